"""The symbol catalogue: which symbols each source lists, their names and price precision."""
