"""Operations: the staff console's view of the running platform and its dead letters."""
