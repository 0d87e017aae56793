"""Operations: the health and metrics endpoint, metrics, logging."""
