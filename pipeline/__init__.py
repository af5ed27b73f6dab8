"""Everything that runs on frames, from a camera, a file or a stream to labels, alerts and outputs.
It imports `actionlstm` (the model side) and never the CLI; `serve/` sits on top of the rest.

    settings.py     the live stages' settings (`PoseSettings`, `RecognizerSettings`) and shared defaults
    sources.py      frame sources: files in order, cameras and streams newest frame first
    pose.py         YOLO-pose on a frame: untracked `Detections`
    tracking.py     ByteTrack / BoT-SORT: people with stable ids (`Poses`)
    buffers.py      per-person ring buffers, in the pickle's representation
    actions.py      the action runtime: ready buffers through the model, smoothed Top-k
    falls.py        a fall read from the skeleton's geometry, and what follows it
    predictor.py    the streaming predictor (`ActionPipeline`): frames in, a `FrameResult` per frame out
    recognizer.py   the Python API (`ActionRecognizer`) built on it
    replay.py       skeletons (a pickle's clip) through the live runtime, without video
    rules.py        alert rules (`--alert`, `--rules`)
    alerts.py       alert events, once per person per episode (`clock.py`: their wall-clock times)
    overlay.py      skeletons, ids and Top-5 panels drawn on a frame
    display.py      the window, when a display exists
    segments.py     per person, the stretches of time under one label
    timeline.py     the segments as a picture
    outputs.py      a run's outputs (video, JSONL, segments, timeline), checked first and published whole
    summary.py      a run's statistics in fixed memory and its printed summary
    run.py          `actionlstm run`: sources side by side, each with its outputs, under one progress bar
    camera_check.py `actionlstm check-camera`: a camera's everyday footage replayed: false alarms, how people are seen, advice
    record.py       `actionlstm record`: training clips of one action from a live source
    extract/        `actionlstm extract`: labelled videos to a skeleton pickle
    demo.py         `actionlstm demo`: sample data, a demo model, the pipeline on real people
    serve/          `actionlstm serve`: the web service
"""
