"""ActionLSTM: bidirectional LSTMs over per-frame skeleton features, pooled over valid frames.

Features come in very different units (normalised coordinates, velocities per second, joint-pair
distances), so a model trained since `standardize` first brings each to zero mean and unit spread with
statistics of its own training windows, kept as buffers in the checkpoint. A model may hold several
members, each a BiLSTM with its own head, trained side by side from different starting weights on
the same batches; it predicts their mean probability. On a few hundred short clips one member's
accuracy moves by several points with its random start alone, and the mean of members moves less.

Windows shorter than the model's 120 frames are padded, and padding never changes a prediction: a
batch of one length runs on just those frames, training (and CUDA) runs a mixed batch on packed
sequences, and CPU inference runs it one direction at a time (`directions_apart`); the pooling is masked.
"""

from dataclasses import asdict, dataclass
from typing import Any, ClassVar

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
    # Inputs standardised per feature (`ActionLSTM.standardize`); off for models built without it.
    standardize: bool = False
    members: int = 1  # BiLSTMs whose probabilities are averaged

    # Settings added after the first checkpoints, with the value those checkpoints were trained with.
    ADDED_LATER: ClassVar[dict[str, Any]] = {"standardize": False, "members": 1}

    def __post_init__(self) -> None:
        if self.members < 1:
            raise ValueError(f"members {self.members} is not a number of models")

    def to_dict(self) -> dict:
        return asdict(self)


OUTPUT_LAYER = ".head.1."  # in the names of the parameters that map pooled features to classes (replaced when fine-tuning onto new classes)


class Member(nn.Module):
    """One BiLSTM and its head: windows [B, W, F] -> logits [B, C]."""

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
        """x [B, W, F] padded windows, lengths [B] valid frames each (>= 1) -> logits [B, C]."""
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


class ActionLSTM(nn.Module):
    """`cfg.members` members over the same standardised inputs."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.members = nn.ModuleList(Member(cfg) for _ in range(cfg.members))
        if cfg.standardize:  # identity until `set_feature_statistics`
            self.register_buffer("feature_mean", torch.zeros(cfg.num_features))
            self.register_buffer("feature_std", torch.ones(cfg.num_features))

    def set_feature_statistics(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Per-feature mean and spread of the training windows' valid frames. A feature that hardly
        varies in training (a joint the data set never annotates, such as JHMDB's eyes) keeps unit
        spread: dividing by ~0 would blow it up wherever it does appear, in a live picture say."""
        self.feature_mean.copy_(mean)
        self.feature_std.copy_(torch.where(std > 1e-3, std, torch.ones_like(std)))

    def standardize(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, W, F] in the units each feature came in -> standardised (unchanged for older models).
        Padding frames stop being zero, but no path lets them reach a valid frame or the pooling."""
        return (x - self.feature_mean) / self.feature_std if self.cfg.standardize else x

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, each_member: bool = False) -> torch.Tensor:
        """x [B, W, F] zero-padded windows, lengths [B] valid frames each (>= 1) -> logits [B, C], or
        with `each_member` every member's [K, B, C] (training scores each member on its own)."""
        x = self.standardize(x)
        logits = torch.stack([member(x, lengths) for member in self.members])
        return logits if each_member else mean_of_members(logits)

    def unpacked(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """`forward` with every batch on the mixed-length inference path: the graph that is exported."""
        x = self.standardize(x)
        return mean_of_members(torch.stack([m.pool_and_classify(m.directions_apart(x, lengths), lengths) for m in self.members]))


def mean_of_members(logits: torch.Tensor) -> torch.Tensor:
    """Members' logits [K, B, C] -> logits [B, C] whose softmax is the members' mean probability (one
    member's logits as they are). The log of the mean, not a logsumexp over members: OpenVINO's
    conversion of the latter gave other numbers (0.77 apart in probability)."""
    if len(logits) == 1:
        return logits[0]
    return torch.log(torch.softmax(logits.float(), dim=-1).mean(dim=0))


def upgrade_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Weights saved before models had members (`lstm.*`, `head.*`) under their member's name."""
    return {f"members.0.{k}" if k.startswith(("lstm.", "head.")) else k: v for k, v in state.items()}


def reverse_within(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Each sequence's first `lengths[b]` frames in reverse order; padding stays where it is."""
    steps = torch.arange(x.shape[1], device=x.device)[None, :].expand(x.shape[0], -1)
    order = torch.where(steps < lengths[:, None], lengths[:, None] - 1 - steps, steps)
    return torch.gather(x, 1, order[..., None].expand(-1, -1, x.shape[2]))
