"""Privacy machinery: crypto (vault, blind indexes), audit trail, DP analytics, data-subject rights."""
