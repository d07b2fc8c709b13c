"""Physics-based noise, camera profiles, unprocessing/camera pipeline, calibration, synth."""
