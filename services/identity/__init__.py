"""Identity: tenants, users and roles, sessions, rosters, and who serves whom."""
