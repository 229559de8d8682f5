"""A transformer GAN for spatiotemporal fusion, with the ideas of ViTGAN and Swin windows.

Lee, K., Chang, H., Jiang, L., Zhang, H., Tu, Z., Liu, C. (2022). ViTGAN: Training GANs with
Vision Transformers. ICLR 2022 (arXiv:2107.04589). Windowed attention as in SwinSTFM: Chen, G.,
Jiao, P., Hu, Q., Xiao, L., Ye, Z. (2022). SwinSTFM: Remote sensing spatiotemporal fusion using
Swin transformer. IEEE TGRS 60, 5410618; itself after Swin (Liu et al. 2021, ICCV).

Generator :class:`ViTGANGenerator` (network ``vitgan``), for a pair ``F1, C1`` and the coarse
target ``C2`` (all on the fine grid, normalised per band):

1. tokens: an *overlapping* patch embedding of ``[F1, C1, C2]`` (a convolution with kernel
   ``p + 2o`` and stride ``p``: each token sees its ``p x p`` pixels and ``o`` more on each side);
2. condition ``w``: the same overlapping embedding of the coarse change ``C2 - C1`` followed by
   a two-layer mapping MLP (ViTGAN's mapping network, fed with the change instead of noise);
3. ``depth`` transformer blocks with ViTGAN's self-modulated LayerNorm
   ``SLN(h, w) = LN(h) * (1 + gamma(w)) + beta(w)`` (the authors' ``1 + gamma`` form) before the
   attention and the MLP, where ``w`` is the condition *pooled over the attention window* (one
   style vector per window, as ViTGAN has one per image; per window keeps the receptive field
   finite), and Swin attention inside non-overlapping windows of ``window x window`` tokens with
   a learned relative position bias, windows shifted by ``window // 2`` on odd blocks;
4. a head that maps tokens back to pixels: SLN (per token), a linear layer to ``p x p x c``
   values per token, pixel shuffle (in place of ViTGAN's implicit pixel generator, a
   Fourier-feature MLP of each pixel's position in its patch modulated by the token: on a
   fixed pixel grid that is some function of the token per pixel, here a linear one), then
   two 3x3 convolutions over those features, ``F1`` and ``C2 - C1``
   (smooths token borders), added to the additive prediction ``F1 + C2 - C1``. The last
   convolution starts at zero, so an untrained generator *is* the additive baseline and the
   adversarial game starts from a sensible image.

``coarse_ref`` is used (it forms the change ``C2 - C1``, the residual base and the condition);
the generator takes one pair (``max_pairs = 1``).

Exact tiling. Windows are anchored at the input origin and inputs are padded at their end to a
multiple of ``multiple = p * window`` pixels; :mod:`stfusion.dl.infer` cuts tiles anchored at
the scene origin whose size and overlap are multiples of ``multiple``, so every tile sees the
same windows as a whole-scene run. With shifted windows alternating, a token reaches
``T = (window - 1) + (depth - 1) * window // 2`` tokens on each side (computed exactly by
:func:`token_reach`), so an output pixel depends on inputs within
``radius = 2 + p * T + p - 1 + o`` pixels (head convolutions 2, token reach, patch size and
overlap); tested by perturbing pixels and by tiled == whole-scene predictions.

Discriminator :class:`ViTDiscriminator`: a ViT made Lipschitz the ViTGAN way, on the condition
and the (real or generated) fine image stacked as channels: overlapping patch embedding,
learned position embedding, blocks of LayerNorm + L2-distance self-attention with tied query
and key projections (logits ``-||q_i - q_j||^2 / sqrt(d_head)``) + MLP, improved spectral
normalisation (:class:`ImprovedSpectralNorm`) on every weight matrix, and a logit per token
(a patch-level map) plus a class-token logit for the whole patch.
"""

from __future__ import annotations

import math
from dataclasses import astuple, dataclass, fields
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from stfusion.dl.networks import FusionNet
from stfusion.dl.networks.discriminators import Discriminator

# ---------------------------------------------------------------------------------------------
# Sizes


@dataclass(frozen=True)
class GeneratorSize:
    """Architecture of a generator size (token grid: one token per ``patch`` x ``patch`` px)."""

    dim: int  # token width
    depth: int  # transformer blocks
    heads: int
    mlp_ratio: int
    patch: int  # token stride p (pixels)
    overlap: int  # extra pixels o on each side of a token's patch
    window: int  # attention window side (tokens)
    w_dim: int  # width of the condition w
    head_channels: int  # pixel features per position after the pixel shuffle


@dataclass(frozen=True)
class DiscriminatorSize:
    """Architecture of a discriminator size."""

    dim: int
    depth: int
    heads: int
    mlp_ratio: int
    patch: int
    overlap: int
    grid: int  # side of the learned position-embedding grid (tokens), resampled to the input


#: ``paper`` follows ViTGAN's CIFAR-10 generator (4 blocks, 384 wide, 6 heads, MLP 1536, 4 px
#: patches, 8 x 8 tokens = one window); tiny/small keep the topology at laptop cost, with
#: SwinSTFM's 16 px attention windows (8 tokens of 2 px there, 4 tokens of 4 px here).
GENERATOR_SIZES: dict[str, GeneratorSize] = {
    "tiny": GeneratorSize(32, 2, 2, 2, 4, 2, 4, 16, 16),
    "small": GeneratorSize(64, 4, 4, 2, 4, 2, 4, 32, 24),
    "paper": GeneratorSize(384, 4, 6, 4, 4, 2, 8, 384, 48),
}
DISCRIMINATOR_SIZES: dict[str, DiscriminatorSize] = {
    "tiny": DiscriminatorSize(32, 2, 2, 2, 4, 2, 16),
    "small": DiscriminatorSize(64, 3, 4, 2, 4, 2, 16),
    "paper": DiscriminatorSize(384, 4, 6, 4, 8, 4, 8),
}


# ---------------------------------------------------------------------------------------------
# Improved spectral normalisation (discriminator)


class ImprovedSpectralNorm(nn.Module):
    """ViTGAN's ISN as a parametrisation: ``W_ISN = sigma(W_init) * W / sigma(W)``.

    ``sigma`` is the largest singular value of the weight reshaped to ``(out, -1)`` (as
    ``torch.nn.utils.spectral_norm`` does for convolutions), estimated by one power iteration
    per training forward pass; ``sigma(W_init)`` is computed exactly (SVD) when the
    parametrisation is registered. Plain spectral normalisation would set every layer's norm to
    1, which ViTGAN found to slow transformer discriminators down; ISN keeps the initial scale
    while still bounding it.
    """

    # Buffers (register_buffer), declared for the type checker.
    sigma_init: torch.Tensor
    u: torch.Tensor
    v: torch.Tensor

    def __init__(self, weight: torch.Tensor, eps: float = 1e-12) -> None:
        super().__init__()
        w = weight.detach().reshape(weight.shape[0], -1).double()
        u, s, vh = torch.linalg.svd(w, full_matrices=False)
        self.eps = eps
        self.register_buffer("sigma_init", s[0].to(weight.dtype).clone())
        self.register_buffer("u", u[:, 0].to(weight.dtype).clone())
        self.register_buffer("v", vh[0].to(weight.dtype).clone())

    def sigma(self, weight: torch.Tensor) -> torch.Tensor:
        """Largest singular value estimate (one power iteration in training mode)."""
        w = weight.reshape(weight.shape[0], -1)
        # In float32 under mixed precision too: autocast would run the products in half
        # precision against the float32 buffers (and the estimate needs the accuracy).
        with torch.autocast(device_type=weight.device.type, enabled=False):
            if self.training:
                with torch.no_grad():
                    v = F.normalize(w.t() @ self.u, dim=0, eps=self.eps)
                    u = F.normalize(w @ v, dim=0, eps=self.eps)
                    self.u.copy_(u)
                    self.v.copy_(v)
            # Clones: the buffers may be updated in place by a later forward pass.
            u, v = self.u.clone(), self.v.clone()
            return torch.dot(u, w @ v)

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight * (self.sigma_init / self.sigma(weight))


def isn(module: nn.Module, name: str = "weight") -> nn.Module:
    """Put improved spectral normalisation on ``module.<name>`` (returns the module)."""
    parametrize.register_parametrization(module, name, ImprovedSpectralNorm(getattr(module, name)))
    return module


# ---------------------------------------------------------------------------------------------
# Shared pieces


class OverlappingPatchEmbed(nn.Module):
    """Tokens from overlapping patches: conv with kernel ``patch + 2 overlap``, stride ``patch``.

    The input is replication-padded by ``overlap`` so token ``(i, j)`` covers pixels
    ``[p i - o, p (i + 1) + o)`` and an ``H x W`` input gives ``H/p x W/p`` tokens.
    """

    def __init__(self, cin: int, dim: int, patch: int, overlap: int) -> None:
        super().__init__()
        self.patch, self.overlap = patch, overlap
        self.proj = nn.Conv2d(cin, dim, patch + 2 * overlap, stride=patch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` -> ``(N, H/p, W/p, dim)``."""
        o = self.overlap
        if o:
            x = F.pad(x, (o, o, o, o), mode="replicate")
        return self.proj(x).permute(0, 2, 3, 1)


class SelfModulatedLayerNorm(nn.Module):
    """ViTGAN's SLN: ``LN(h) * (1 + gamma(w)) + beta(w)`` with affine ``gamma``, ``beta``.

    ``w`` has the leading shape of ``h`` (one condition vector per token, or broadcastable).
    ``gamma`` and ``beta`` start at zero: an untrained SLN is a plain LayerNorm.
    """

    def __init__(self, dim: int, w_dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-5)
        self.gamma = nn.Linear(w_dim, dim)
        self.beta = nn.Linear(w_dim, dim)
        for lin in (self.gamma, self.beta):
            nn.init.zeros_(lin.weight)
            nn.init.zeros_(lin.bias)

    def forward(self, h: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return self.norm(h) * (1.0 + self.gamma(w)) + self.beta(w)


def _mlp(dim: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))


# ---------------------------------------------------------------------------------------------
# Windows


def window_labels(n: int, window: int, shift: int) -> torch.Tensor:
    """Window index of each of ``n`` token positions when windows start at ``shift + k window``
    (``floor((i - shift) / window)``, anchored at position 0)."""
    return torch.div(torch.arange(n) - shift, window, rounding_mode="floor")


def token_reach(window: int, depth: int, shift: int | None = None) -> int:
    """How many tokens away (per axis) an output token can depend on after ``depth`` blocks
    whose windows alternate between unshifted and shifted by ``shift`` (default window // 2)."""
    s = window // 2 if shift is None else shift
    reach = 0
    for t in range(2 * window):  # the pattern repeats with period window
        lo = hi = t
        for k in range(depth):
            off = s if k % 2 else 0
            hi = (hi - off) // window * window + off + window - 1
            lo = (lo - off) // window * window + off
        reach = max(reach, hi - t, t - lo)
    return reach


def partition(x: torch.Tensor, window: int, shift: int) -> torch.Tensor:
    """``(N, H, W, C)`` -> ``(N, nW, window^2, C)``: windows of the grid rolled by ``-shift``
    (Swin's cyclic shift; the wrapped windows are split by :func:`region_mask`)."""
    n, h, w, c = x.shape
    if shift:
        x = torch.roll(x, (-shift, -shift), (1, 2))
    x = x.reshape(n, h // window, window, w // window, window, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(n, (h // window) * (w // window), window * window, c)


def unpartition(x: torch.Tensor, h: int, w: int, window: int, shift: int) -> torch.Tensor:
    """Inverse of :func:`partition`."""
    n, _, _, c = x.shape
    x = x.reshape(n, h // window, w // window, window, window, c).permute(0, 1, 3, 2, 4, 5)
    x = x.reshape(n, h, w, c)
    if shift:
        x = torch.roll(x, (shift, shift), (1, 2))
    return x


def region_mask(h: int, w: int, window: int, shift: int, device: torch.device) -> torch.Tensor:
    """``(nW, window^2, window^2)`` bool: token pairs of a rolled window that belong to the same
    window of the shifted partition (:func:`window_labels`); all True when ``shift == 0``."""
    ry = window_labels(h, window, shift)
    rx = window_labels(w, window, shift)
    lab = (ry[:, None] * (w // window + 2) + rx[None, :]).to(device)[None, :, :, None]
    lab = partition(lab, window, shift)[0, :, :, 0]  # (nW, T)
    return lab[:, :, None] == lab[:, None, :]


def window_mean(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean of partitioned ``x`` ``(N, nW, T, C)`` over each token's window (``mask`` from
    :func:`region_mask`; None: whole rolled windows), broadcastable to ``x``."""
    if mask is None:
        return x.mean(2, keepdim=True)
    m = mask.to(x.dtype)
    return (m @ x) / m.sum(-1, keepdim=True)


class WindowAttention(nn.Module):
    """Multi-head dot-product self-attention inside windows, with Swin's relative position bias."""

    # A buffer (register_buffer), declared for the type checker.
    bias_index: torch.Tensor

    def __init__(self, dim: int, heads: int, window: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not a multiple of heads {heads}")
        self.heads, self.window = heads, window
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        nn.init.trunc_normal_(self.bias_table, std=0.02)
        yy, xx = torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")
        pos = torch.stack((yy.flatten(), xx.flatten()))  # (2, T)
        rel = pos[:, :, None] - pos[:, None, :] + (window - 1)
        self.register_buffer("bias_index", rel[0] * (2 * window - 1) + rel[1], persistent=False)

    def position_bias(self) -> torch.Tensor:
        t = self.window**2
        bias = self.bias_table[self.bias_index.reshape(-1)].reshape(t, t, self.heads)
        return bias.permute(2, 0, 1)  # (heads, T, T)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``x``: ``(N, nW, T, C)``; ``mask``: ``(nW, T, T)`` bool (True = may attend)."""
        n, nw, t, c = x.shape
        qkv = self.qkv(x).reshape(n, nw, t, 3, self.heads, c // self.heads)
        q, k, v = qkv.permute(3, 0, 1, 4, 2, 5)  # each (N, nW, heads, T, d)
        logits = (q @ k.transpose(-1, -2)) * self.scale + self.position_bias()
        if mask is not None:
            logits = logits.masked_fill(~mask[None, :, None], float("-inf"))
        out = torch.softmax(logits, dim=-1) @ v  # (N, nW, heads, T, d)
        return self.proj(out.transpose(2, 3).reshape(n, nw, t, c))


class SwinSLNBlock(nn.Module):
    """Pre-norm transformer block: SLN, window attention, SLN, MLP (residuals around both).

    The condition of each SLN is ``w`` averaged over the tokens of the attention window the
    token is in (the same windows as the attention, shifted ones included).
    """

    def __init__(
        self, dim: int, heads: int, window: int, shift: int, mlp_ratio: int, w_dim: int
    ) -> None:
        super().__init__()
        self.window, self.shift = window, shift
        self.norm1 = SelfModulatedLayerNorm(dim, w_dim)
        self.attn = WindowAttention(dim, heads, window)
        self.norm2 = SelfModulatedLayerNorm(dim, w_dim)
        self.mlp = _mlp(dim, mlp_ratio * dim)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """``x``: ``(N, H, W, dim)`` tokens, ``w``: ``(N, H, W, w_dim)`` condition."""
        _, h, wd, _ = x.shape
        win, s = self.window, self.shift
        xw, ww = partition(x, win, s), partition(w, win, s)
        mask = region_mask(h, wd, win, s, x.device) if s else None
        pooled = window_mean(ww, mask)
        xw = xw + self.attn(self.norm1(xw, pooled), mask)
        xw = xw + self.mlp(self.norm2(xw, pooled))
        return unpartition(xw, h, wd, win, s)


# ---------------------------------------------------------------------------------------------
# Generator


def generator_size(channels: tuple[int, ...]) -> GeneratorSize:
    """The :class:`GeneratorSize` stored as a tuple of ints (checked)."""
    from stfusion.errors import InvalidParameterError

    names = [f.name for f in fields(GeneratorSize)]
    if len(channels) != len(names):
        raise InvalidParameterError(
            f"vitgan: the architecture needs {len(names)} numbers ({', '.join(names)}), got "
            f"{tuple(channels)}; use --size tiny, small or paper."
        )
    a = GeneratorSize(*(int(c) for c in channels))
    positive = [v for k, v in zip(names, astuple(a)) if k != "overlap"]
    if min(positive) < 1 or a.overlap < 0 or a.dim % a.heads:
        raise InvalidParameterError(f"vitgan: invalid architecture {a}.")
    return a


class ViTGANGenerator(FusionNet):
    """Transformer generator (ViTGAN SLN + Swin windows) for ``bands`` bands; see the module
    docstring. ``channels`` is the architecture as a tuple of ints, the fields of
    :class:`GeneratorSize` in order (``sizes`` holds tiny, small, paper), so a checkpoint's
    ``channels`` describe the whole network."""

    name = "vitgan"
    #: Trained by the generic adversarial loop, against the ViT discriminator by default.
    adversarial = True
    discriminator = "vit"
    max_pairs = 1
    sizes: ClassVar[dict[str, tuple[int, ...]]] = {
        k: astuple(v) for k, v in GENERATOR_SIZES.items()
    }
    #: Class-level values are those of the largest named size; instances set their own.
    radius = 0
    multiple = 1
    residual_base = True

    def __init__(
        self, bands: int, channels: tuple[int, ...] = astuple(GENERATOR_SIZES["small"])
    ) -> None:
        super().__init__(bands, channels)
        a = generator_size(self.channels)
        self.arch = a
        self.radius = receptive_radius(a)
        self.multiple = a.patch * a.window
        self.embed = OverlappingPatchEmbed(3 * bands, a.dim, a.patch, a.overlap)
        self.cond_embed = OverlappingPatchEmbed(bands, a.w_dim, a.patch, a.overlap)
        self.mapping = nn.Sequential(
            nn.GELU(), nn.Linear(a.w_dim, a.w_dim), nn.GELU(), nn.Linear(a.w_dim, a.w_dim)
        )
        self.blocks = nn.ModuleList(
            SwinSLNBlock(a.dim, a.heads, a.window, (a.window // 2) * (i % 2), a.mlp_ratio, a.w_dim)
            for i in range(a.depth)
        )
        self.norm = SelfModulatedLayerNorm(a.dim, a.w_dim)
        self.to_pixels = nn.Linear(a.dim, a.patch * a.patch * a.head_channels)
        c = a.head_channels
        self.refine = nn.Sequential(
            nn.ReplicationPad2d(1),
            nn.Conv2d(c + 2 * bands, c, 3),
            nn.GELU(),
            nn.ReplicationPad2d(1),
            nn.Conv2d(c, bands, 3),
        )
        last = self.refine[-1]
        assert isinstance(last, nn.Conv2d) and last.bias is not None
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)

    def condition(self, coarse_ref: torch.Tensor, coarse_target: torch.Tensor) -> torch.Tensor:
        """The per-token condition ``w`` from the coarse change: ``(N, H/p, W/p, w_dim)``."""
        return self.mapping(self.cond_embed(coarse_target - coarse_ref))

    def forward(
        self, fine_ref: torch.Tensor, coarse_ref: torch.Tensor, coarse_target: torch.Tensor
    ) -> torch.Tensor:
        h, w = fine_ref.shape[-2:]
        m = self.multiple
        ph, pw = -h % m, -w % m
        if ph or pw:  # pad the end only: windows stay anchored at the input origin
            fine_ref, coarse_ref, coarse_target = (
                F.pad(t, (0, pw, 0, ph), mode="replicate")
                for t in (fine_ref, coarse_ref, coarse_target)
            )
        change = coarse_target - coarse_ref
        cond = self.condition(coarse_ref, coarse_target)
        x = self.embed(torch.cat((fine_ref, coarse_ref, coarse_target), 1))
        for blk in self.blocks:
            x = blk(x, cond)
        x = self.to_pixels(self.norm(x, cond))  # (N, H/p, W/p, p*p*c)
        pix = F.pixel_shuffle(x.permute(0, 3, 1, 2), self.arch.patch)
        out = fine_ref + change + self.refine(torch.cat((pix, fine_ref, change), 1))
        return out[..., :h, :w]


def receptive_radius(a: GeneratorSize) -> int:
    """Receptive-field radius (fine px) of a generator size; see the module docstring."""
    head = 2  # two 3x3 convolutions
    return head + a.patch * token_reach(a.window, a.depth) + a.patch - 1 + a.overlap


ViTGANGenerator.radius = max(receptive_radius(a) for a in GENERATOR_SIZES.values())
ViTGANGenerator.multiple = max(a.patch * a.window for a in GENERATOR_SIZES.values())


# ---------------------------------------------------------------------------------------------
# Discriminator


class L2Attention(nn.Module):
    """Multi-head L2-distance self-attention with tied query/key projections (ViTGAN, after Kim
    et al. 2021, "The Lipschitz constant of self-attention").

    ``logits_ij = -||x_i W_qk - x_j W_qk||^2 / sqrt(d_head)`` (one projection ``W_qk`` serves as
    query and key). Dot-product attention is not Lipschitz; this form is, so the spectral
    normalisation of the weights bounds the discriminator. Weights carry ISN.
    """

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not a multiple of heads {heads}")
        self.heads = heads
        self.d_head = dim // heads
        self.qk = isn(nn.Linear(dim, dim, bias=False))
        self.v = isn(nn.Linear(dim, dim, bias=False))
        self.proj = isn(nn.Linear(dim, dim))

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        n, s, _ = t.shape
        return t.reshape(n, s, self.heads, self.d_head).transpose(1, 2)  # (N, heads, S, d)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, S, dim)`` -> ``(N, heads, S, S)``: minus squared distances over sqrt(d)."""
        q = self._heads(self.qk(x))
        sq = (q * q).sum(-1)
        d2 = (sq[..., :, None] + sq[..., None, :] - 2.0 * (q @ q.transpose(-1, -2))).clamp_min(0)
        return -d2 / math.sqrt(self.d_head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        attn = torch.softmax(self.logits(x), dim=-1)
        out = attn @ self._heads(self.v(x))
        n, _, s, _ = out.shape
        return self.proj(out.transpose(1, 2).reshape(n, s, -1))


class _DBlock(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = L2Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        hidden = mlp_ratio * dim
        self.mlp = nn.Sequential(
            isn(nn.Linear(dim, hidden)), nn.GELU(), isn(nn.Linear(hidden, dim))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViTDiscriminator(Discriminator):
    """Conditional ViT discriminator (ViTGAN's Lipschitz recipe); see the module docstring.

    ``bands_in``: channels of the condition and the image together (they are concatenated).
    ``forward(condition, image)`` returns ``[patch logits (N, 1, ceil(H/P), ceil(W/P)), class
    logits (N, 1, nh, nw)]``: one logit per token and one per crop of ``grid x P`` pixels (the
    training patch, 64 px for tiny and small): inputs larger than that (validation blocks) are
    judged crop by crop, so the cost of global attention stays bounded; a training patch is one
    crop (``nh = nw = 1``). Inputs are replication-padded to whole patches / crops.
    """

    name = "vit"

    def __init__(self, bands_in: int, size: str = "small") -> None:
        super().__init__(bands_in, size)
        from stfusion.errors import InvalidParameterError

        if size not in DISCRIMINATOR_SIZES:
            raise InvalidParameterError(
                f"discriminator size {size!r}: choose one of {', '.join(DISCRIMINATOR_SIZES)}."
            )
        a = DISCRIMINATOR_SIZES[size]
        self.arch = a
        self.embed = OverlappingPatchEmbed(self.bands_in, a.dim, a.patch, a.overlap)
        isn(self.embed.proj)
        self.pos = nn.Parameter(torch.zeros(1, a.dim, a.grid, a.grid))
        self.cls = nn.Parameter(torch.zeros(1, 1, a.dim))
        nn.init.trunc_normal_(self.pos, std=0.02)
        nn.init.trunc_normal_(self.cls, std=0.02)
        self.blocks = nn.ModuleList(_DBlock(a.dim, a.heads, a.mlp_ratio) for _ in range(a.depth))
        self.norm = nn.LayerNorm(a.dim)
        self.head = isn(nn.Linear(a.dim, 1))

    def features(
        self, condition: torch.Tensor, image: torch.Tensor
    ) -> tuple[list[torch.Tensor], list[list[torch.Tensor]]]:
        """Logits (see the class docstring) and, per output, the token maps after each block
        (crops folded into the batch) and the class token after each block."""
        x = torch.cat((condition, image), 1)
        if x.shape[1] != self.bands_in:
            raise ValueError(f"expected {self.bands_in} channels in all, got {x.shape[1]}")
        a = self.arch
        n, c, h, w = x.shape
        crop = a.grid * a.patch
        th, tw = -(-h // a.patch), -(-w // a.patch)  # tokens covering the input
        if h <= crop and w <= crop:
            step_h, step_w = th * a.patch, tw * a.patch
        else:
            step_h = step_w = crop
        ph, pw = -h % step_h, -w % step_w
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        nh, nw = x.shape[-2] // step_h, x.shape[-1] // step_w
        if nh * nw > 1:  # crops into the batch: (N nh nw, C, step, step)
            x = x.reshape(n, c, nh, step_h, nw, step_w).permute(0, 2, 4, 1, 3, 5)
            x = x.reshape(n * nh * nw, c, step_h, step_w)
        tok = self.embed(x)  # (B, gh, gw, dim)
        b, gh, gw, d = tok.shape
        pos: torch.Tensor = self.pos
        if (gh, gw) != (a.grid, a.grid):
            pos = F.interpolate(pos, size=(gh, gw), mode="bilinear", align_corners=False)
        z = torch.cat(
            (self.cls.expand(b, -1, -1), (tok + pos.permute(0, 2, 3, 1)).reshape(b, gh * gw, d)), 1
        )
        token_feats, cls_feats = [], []
        for blk in self.blocks:
            z = blk(z)
            token_feats.append(z[:, 1:].transpose(1, 2).reshape(b, d, gh, gw))
            cls_feats.append(z[:, :1].transpose(1, 2).reshape(b, d, 1, 1))
        logits = self.head(self.norm(z))[..., 0]  # (B, 1 + gh gw)
        patch_map = logits[:, 1:].reshape(n, nh, nw, gh, gw).permute(0, 1, 3, 2, 4)
        patch_map = patch_map.reshape(n, 1, nh * gh, nw * gw)[..., :th, :tw]
        cls_map = logits[:, 0].reshape(n, 1, nh, nw)
        return [patch_map, cls_map], [token_feats, cls_feats]


__all__ = [
    "DISCRIMINATOR_SIZES",
    "GENERATOR_SIZES",
    "ImprovedSpectralNorm",
    "L2Attention",
    "OverlappingPatchEmbed",
    "SelfModulatedLayerNorm",
    "SwinSLNBlock",
    "ViTDiscriminator",
    "ViTGANGenerator",
    "WindowAttention",
    "generator_size",
    "isn",
    "partition",
    "receptive_radius",
    "region_mask",
    "token_reach",
    "unpartition",
    "window_labels",
    "window_mean",
]
