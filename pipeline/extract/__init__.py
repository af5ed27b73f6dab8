"""Skeletons of labelled videos, with the live pose and tracking stages, as a UCF101 / PYSKL pickle.

video.py    one video in, one annotation of the pickle out (frame t of the arrays is frame t of the video)
dataset.py  a folder (or list) of labelled videos in, the pickle out: per-video cache, workers, torchrun shares
"""
