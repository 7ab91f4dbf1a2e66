"""Pure model of SMS Blossom: entities, value objects, policies. Standard library only."""
