"""ActionLSTM: a bidirectional LSTM over per-frame skeleton features, pooled over valid frames.

Windows shorter than the model's 120 frames are padded; the LSTM runs on packed sequences and the
pooling is masked, so padding never changes a prediction.
"""

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


@dataclass(frozen=True)
class ModelConfig:
    num_features: int
    num_classes: int
    hidden: int = 128
    layers: int = 2
    dropout: float = 0.3
    bidirectional: bool = True

    def to_dict(self) -> dict:
        return asdict(self)


OUTPUT_LAYER = "head.1."  # the parameters that map pooled features to classes (replaced when fine-tuning onto new classes)


class ActionLSTM(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.lstm = nn.LSTM(
            cfg.num_features,
            cfg.hidden,
            num_layers=cfg.layers,
            batch_first=True,
            dropout=cfg.dropout if cfg.layers > 1 else 0.0,
            bidirectional=cfg.bidirectional,
        )
        width = cfg.hidden * (2 if cfg.bidirectional else 1)
        # Mean and max over time: the mean says what happens throughout, the max catches brief peaks.
        self.head = nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(2 * width, cfg.num_classes))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """x [B, W, F] zero-padded windows, lengths [B] valid frames each (>= 1) -> logits [B, C]."""
        frames = x.shape[1]
        if bool((lengths == frames).all()):
            out, _ = self.lstm(x)
        else:
            packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            out, _ = self.lstm(packed)
            out, _ = pad_packed_sequence(out, batch_first=True, total_length=frames)
        return self.pool_and_classify(out, lengths)

    def pool_and_classify(self, out: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """LSTM outputs [B, W, H] -> logits [B, C], from the first `lengths` frames of each window only."""
        frames = out.shape[1]
        mask = (torch.arange(frames, device=out.device)[None, :] < lengths.to(out.device)[:, None]).unsqueeze(-1)
        mean = (out * mask).sum(1) / lengths.to(out.dtype).to(out.device)[:, None]
        peak = out.masked_fill(~mask, float("-inf")).amax(1)
        return self.head(torch.cat([mean, peak], dim=-1))
