"""Side-by-side peers for the benchmark: the small servers a developer would write without this project."""
