// guest image builder: see issue 4. Intentionally empty until the builder lands.
