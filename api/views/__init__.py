"""API views, one module per area. Views parse, call one service or selector, and serialise."""
