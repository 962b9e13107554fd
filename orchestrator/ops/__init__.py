"""Operations state shared by every hub instance: runtime settings and DB-derived metrics."""
