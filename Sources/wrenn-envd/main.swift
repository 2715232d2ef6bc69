// Slim guest binary: envd alone. Filled in by issue 3.
print("wrenn-envd: not built yet")
