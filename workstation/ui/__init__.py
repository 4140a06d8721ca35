"""The Qt user interface: the only package that imports Qt widgets. It reads shared buffers on GUI-thread timers and
never waits on I/O."""
