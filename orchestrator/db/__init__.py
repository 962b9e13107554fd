"""Database access: operation values (``calls``) and the drivers that execute them."""
