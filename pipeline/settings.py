"""Defaults that the CLI and the Python API share, in a module that imports nothing heavy (the CLI
reads them when it starts, before torch or ultralytics are loaded)."""

# How long a person who is not detected keeps their id (tracker) and their frames (buffers).
LOST_SECONDS = 2.0
# Below this smoothed top-1 probability a person is shown as "uncertain": the highest threshold that
# kept false alarms on classes a model knows at or under 10% in every study of
# scripts/min_prob_study.py (2.0%, 1.5%, 7.5% of windows), while catching 39% of the windows of
# activities it never saw (11% at 0.5). Measured on 3- to 5-class models; see README.
MIN_PROB = 0.7
# Lowest person-detection confidence handed to the tracker: ByteTrack keeps tracks alive through
# blur and occlusion with the weak detections (it starts new tracks at 0.25 only).
CONF = 0.1
TRACKER = "bytetrack"
