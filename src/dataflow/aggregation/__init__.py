"""Invoice facts, cubes, disclosure control and immutable releases."""
