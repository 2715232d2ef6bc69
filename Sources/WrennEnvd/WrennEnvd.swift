// envd module: see issue 3. Intentionally empty until envd lands.
