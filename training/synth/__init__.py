"""ToolScale-style synthesis: procedural tool environments and their verified tasks."""
