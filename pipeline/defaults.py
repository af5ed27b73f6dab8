"""Defaults that the CLI and the Python API share, in a module that imports nothing heavy (the CLI
reads them when it starts, before torch or ultralytics are loaded)."""

# How long a person who is not detected keeps their id (tracker) and their frames (buffers).
LOST_SECONDS = 2.0
# Below this smoothed top-1 probability a person is shown as "uncertain" (scripts/min_prob_study.py
# measures thresholds on classes held out of training, which the model must not claim).
MIN_PROB = 0.5
# Lowest person-detection confidence handed to the tracker: ByteTrack keeps tracks alive through
# blur and occlusion with the weak detections (it starts new tracks at 0.25 only).
CONF = 0.1
TRACKER = "bytetrack"
