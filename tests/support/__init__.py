"""Stand-ins for systems that cannot run here: real local servers speaking their protocol."""
