// host agent module: see issue 4. Intentionally empty until the runtime lands.
