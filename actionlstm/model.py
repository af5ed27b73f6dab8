"""ActionLSTM: a bidirectional LSTM over per-frame skeleton features, pooled over valid frames.

Windows shorter than the model's 120 frames are padded, and padding never changes a prediction: a
batch of one length runs on just those frames, training (and CUDA) runs a mixed batch on packed
sequences, and CPU inference runs it one direction at a time (`directions_apart`); the pooling is masked.
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
        longest = int(lengths.max())
        if bool((lengths == longest).all()):  # nothing to skip but the common padding
            out, _ = self.lstm(x[:, :longest])
        elif self.training or x.is_cuda:  # cuDNN takes packed sequences, and whole weight buffers only
            packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            out, _ = self.lstm(packed)
            out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        else:
            out = self.directions_apart(x, lengths)
        return self.pool_and_classify(out, lengths)

    def directions_apart(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """LSTM outputs [B, W, H] of a mixed-length batch (inference, no dropout): each direction of each
        layer on its own, the backward one over each window reversed within its length, so padding never
        reaches a valid frame. Packed sequences compute the same, but on the CPU only these plain calls
        take the fast oneDNN kernel (3 windows: 8.2 instead of 13.4 ms), and only these export to ONNX."""
        lstm, directions = self.lstm, ["", "_reverse"] if self.cfg.bidirectional else [""]
        start = x.new_zeros(1, x.shape[0], self.cfg.hidden)
        for layer in range(self.cfg.layers):
            outputs = []
            for suffix in directions:
                weights = [getattr(lstm, f"{name}_l{layer}{suffix}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
                frames = reverse_within(x, lengths) if suffix else x
                # one layer, one direction: (input, (h0, c0), weights, has_biases, layers, dropout, train, bidirectional, batch_first)
                out = torch.lstm(frames, (start, start), weights, True, 1, 0.0, False, False, True)[0]
                outputs.append(reverse_within(out, lengths) if suffix else out)
            x = torch.cat(outputs, dim=-1)
        return x

    def pool_and_classify(self, out: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """LSTM outputs [B, W, H] -> logits [B, C], from the first `lengths` frames of each window only."""
        frames = out.shape[1]
        mask = (torch.arange(frames, device=out.device)[None, :] < lengths.to(out.device)[:, None]).unsqueeze(-1)
        mean = torch.where(mask, out, 0.0).sum(1) / lengths.to(out.dtype).to(out.device)[:, None]
        peak = out.masked_fill(~mask, float("-inf")).amax(1)
        return self.head(torch.cat([mean, peak], dim=-1))


def reverse_within(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Each sequence's first `lengths[b]` frames in reverse order; padding stays where it is."""
    steps = torch.arange(x.shape[1], device=x.device)[None, :].expand(x.shape[0], -1)
    order = torch.where(steps < lengths[:, None], lengths[:, None] - 1 - steps, steps)
    return torch.gather(x, 1, order[..., None].expand(-1, -1, x.shape[2]))
