"""Posing and rasterising synthetic humans (the renderer behind :mod:`leo_video.data.synthetic`).

A :class:`Person` is posed in 3D (x right, y up, z towards the camera; lengths in *body units*,
standing height about 1) from joint trajectories that are sums of slow sinusoids, projected
orthographically, and rasterised as anti-aliased signed-distance shapes (tapered capsules and
rounded trapezoids) in depth order, over a static background.

Determinism: transcendental functions (sin, cos, tanh) only enter the skeleton, whose joint
positions and depths are rounded to ``2**-20`` frame units; everything per pixel is IEEE-exact
arithmetic (+, -, *, /, sqrt, floor, min/max) in a fixed order, so no libm or SIMD difference
between machines can change a pixel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

_QUANTUM = 2.0**-20  # joint positions are rounded to this many frame units (see module docstring)


@dataclass(frozen=True)
class Body:
    """Proportions in body units (standing height about 1)."""

    head: float
    neck: float
    torso: float
    upper_arm: float
    forearm: float
    hand: float
    thigh: float
    shin: float
    ankle: float  # height of the ankle joint above the floor
    foot: float
    shoulder_width: float
    waist_width: float
    hip_width: float
    torso_depth: float
    arm_radius: float
    leg_radius: float
    stance: float  # distance between the ankles
    stagger: float  # one foot forward (z) by this much, the other back
    turnout: float  # toes point outwards by this angle (radians)


@dataclass(frozen=True)
class Look:
    """Colours (RGB in [0, 1]) and clothing."""

    skin: tuple[float, float, float]
    hair: tuple[float, float, float]
    shirt: tuple[float, float, float]
    stripe: tuple[float, float, float]  # second colour of a striped shirt
    pants: tuple[float, float, float]
    shoes: tuple[float, float, float]
    pattern: str  # "solid", "hstripes" or "vstripes"
    stripe_period: float  # body units
    long_sleeves: bool
    hair_style: str  # "short", "long" or "bald"
    tunic: float  # how far the shirt hangs below the waist, body units (0: tucked in)


@dataclass(frozen=True)
class Scene:
    """Background and framing (frame units: the frame is the unit square, y down)."""

    wall_top: tuple[float, float, float]
    wall_bottom: tuple[float, float, float]
    floor_far: tuple[float, float, float]
    floor_near: tuple[float, float, float]
    horizon: float  # y of the wall/floor line
    wall_texture: str  # "plain", "panels" or "bricks"
    floor_texture: str  # "plain", "planks" or "tiles"
    texture_period: float
    center_x: float  # x of the point between the feet
    ground_y: float  # y of the floor under the feet
    scale: float  # frame units per body unit


@dataclass(frozen=True)
class Motion:
    """Joint trajectories: ``value_j(t) = soft_clip(center_j + sum_k amp_jk sin(2 pi f_k t + phase_jk))``."""

    freqs: np.ndarray  # (K,) Hz, shared by all joints so that the body moves as one routine
    center: np.ndarray  # (J,)
    amp: np.ndarray  # (J, K)
    phase: np.ndarray  # (J, K)


@dataclass(frozen=True)
class Person:
    """Everything that defines one synthetic video: appearance and motion."""

    body: Body
    look: Look
    scene: Scene
    motion: Motion


# Joints: name -> (lower limit, upper limit, centre range, amplitude per sinusoid).
# Radians, except shift/squat (body units) and drift (frame units). Arm angles are in the torso
# frame: "raise" lifts the upper arm from hanging (0) towards overhead (pi), "swing" turns it from
# sideways (0) to forwards (pi/2); the elbow angles add to them for the forearm.
_JOINTS: dict[str, tuple[float, float, tuple[float, float], float]] = {
    "shift": (-0.07, 0.07, (-0.02, 0.02), 0.035),  # lateral weight transfer
    "squat": (0.0, 0.10, (0.01, 0.05), 0.02),  # knee bend lowers the pelvis
    "hip_yaw": (-0.4, 0.4, (-0.15, 0.15), 0.12),
    "twist": (-0.6, 0.6, (-0.1, 0.1), 0.25),  # torso yaw on top of the hips
    "lean": (-0.12, 0.12, (-0.03, 0.03), 0.04),  # side bend
    "bow": (-0.05, 0.25, (0.0, 0.08), 0.05),  # forward lean
    "head_yaw": (-0.6, 0.6, (-0.15, 0.15), 0.18),
    "head_roll": (-0.2, 0.2, (-0.05, 0.05), 0.05),
    "head_nod": (-0.2, 0.3, (0.0, 0.1), 0.07),
    "l_raise": (0.05, 2.6, (0.3, 1.4), 0.5),
    "l_swing": (-0.4, 2.0, (0.2, 1.4), 0.45),
    "l_elbow_raise": (0.0, 1.9, (0.3, 1.0), 0.4),
    "l_elbow_swing": (-0.2, 1.2, (0.1, 0.7), 0.3),
    "r_raise": (0.05, 2.6, (0.3, 1.4), 0.5),
    "r_swing": (-0.4, 2.0, (0.2, 1.4), 0.45),
    "r_elbow_raise": (0.0, 1.9, (0.3, 1.0), 0.4),
    "r_elbow_swing": (-0.2, 1.2, (0.1, 0.7), 0.3),
    "drift_x": (-0.04, 0.04, (0.0, 0.0), 0.015),
    "drift_y": (-0.015, 0.015, (0.0, 0.0), 0.005),
}
_JOINT_NAMES = tuple(_JOINTS)
_EYES = (0.1, 0.08, 0.07)
_SWAYING = ("shift", "drift_x", "drift_y")


# ----------------------------------------------------------------------------- motion and pose


def joint_angles(motion: Motion, times: np.ndarray, speed: float = 1.0, sway: float = 1.0) -> dict[str, np.ndarray]:
    """Evaluate every joint at ``times`` (seconds, shape ``(T,)``); returns name -> ``(T,)`` values.

    Each joint is a sum of slow sinusoids, squashed smoothly (tanh) into its limits.
    """
    arg = 2 * np.pi * speed * motion.freqs[None, None, :] * times[:, None, None] + motion.phase[None]  # (T, J, K)
    raw = motion.center[None] + np.sum(motion.amp[None] * np.sin(arg), axis=-1)  # (T, J)
    limits = np.array([_JOINTS[name][:2] for name in _JOINT_NAMES])  # (J, 2)
    mid, half = limits.mean(axis=1), (limits[:, 1] - limits[:, 0]) / 2
    values = mid + half * np.tanh((raw - mid) / half)  # (T, J)
    return {name: values[:, j] * (sway if name in _SWAYING else 1.0) for j, name in enumerate(_JOINT_NAMES)}


def _rotate(v: np.ndarray, yaw: np.ndarray | float = 0.0, roll: np.ndarray | float = 0.0,
            pitch: np.ndarray | float = 0.0) -> np.ndarray:
    """Apply ``R_yaw(y) R_roll(z) R_pitch(x)`` to vectors ``(..., 3)``; angles broadcast over ``...``."""
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    y, z = y * np.cos(pitch) - z * np.sin(pitch), y * np.sin(pitch) + z * np.cos(pitch)  # bow: top comes forward
    x, y = x * np.cos(roll) - y * np.sin(roll), x * np.sin(roll) + y * np.cos(roll)
    x, z = x * np.cos(yaw) + z * np.sin(yaw), -x * np.sin(yaw) + z * np.cos(yaw)
    return np.stack(np.broadcast_arrays(x, y, z), axis=-1)


def _vec(x: float, y: float, z: float) -> np.ndarray:
    return np.array([x, y, z], dtype=np.float64)


def _two_bone_ik(root: np.ndarray, target: np.ndarray, l1: float, l2: float, hint: np.ndarray):
    """Middle and end joints ``(T, 3)`` of a two-segment limb reaching from ``root`` to ``target``.

    The middle joint bends towards ``hint``; an out-of-reach target is approached as far as the
    limb allows (the foot lifts a little).
    """
    delta = target - root
    dist = np.linalg.norm(delta, axis=-1, keepdims=True)
    axis = delta / dist
    reach = np.clip(dist, abs(l1 - l2) + 1e-4, 0.999 * (l1 + l2))
    along = (l1 * l1 - l2 * l2 + reach * reach) / (2 * reach)  # law of cosines, no trig needed
    out = np.sqrt(np.maximum(l1 * l1 - along * along, 0.0))
    bend = hint - np.sum(hint * axis, axis=-1, keepdims=True) * axis
    bend = bend / np.linalg.norm(bend, axis=-1, keepdims=True)
    return root + along * axis + out * bend, root + reach * axis


def pose_skeleton(body: Body, angles: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Joint positions ``(T, 3)`` in body units (origin between the feet on the floor).

    Also holds the head's unit axes (``head_up``, ``head_fwd``, ``head_right``, ``(T, 3)``) and the
    ``torso_yaw`` / ``hip_yaw`` angles ``(T,)`` that set the projected widths of torso and hips.
    """
    b, a = body, angles
    T = len(a["squat"])
    legs = b.thigh + b.shin
    # Feet stay planted; the pelvis height follows from the stance so that the knees are just bent.
    spread, stagger = b.stance / 2 - b.hip_width / 2, b.stagger
    rest = b.ankle + math.sqrt((0.985 * legs) ** 2 - spread**2 - stagger**2)
    pelvis = np.stack([a["shift"], rest - a["squat"], np.zeros(T)], axis=-1)  # (T, 3)
    torso_yaw = a["hip_yaw"] + a["twist"]
    up = _rotate(_vec(0, 1, 0), torso_yaw, a["lean"], a["bow"])  # (T, 3)
    joints = {"pelvis": pelvis, "neck": pelvis + b.torso * up}
    head_yaw = torso_yaw + a["head_yaw"]
    joints["head_up"] = _rotate(_vec(0, 1, 0), head_yaw, a["lean"] + a["head_roll"], a["bow"] + a["head_nod"])
    joints["head_fwd"] = _rotate(_vec(0, 0, 1), head_yaw, a["lean"] + a["head_roll"], a["bow"] + a["head_nod"])
    joints["head_right"] = _rotate(_vec(1, 0, 0), head_yaw, a["lean"] + a["head_roll"], a["bow"] + a["head_nod"])
    joints["chin"] = joints["neck"] + b.neck * joints["head_up"]
    for side, s in (("l", -1.0), ("r", 1.0)):
        hip = pelvis + _rotate(_vec(s * b.hip_width / 2, 0, 0), a["hip_yaw"])
        ankle = np.broadcast_to(_vec(s * b.stance / 2, b.ankle, s * stagger), (T, 3))
        hint = _rotate(_vec(s * 0.35, 0, 1), a["hip_yaw"])
        knee, ankle = _two_bone_ik(hip, ankle, b.thigh, b.shin, hint)
        toe = ankle + _vec(s * b.foot * math.sin(b.turnout), -0.6 * b.ankle, b.foot * math.cos(b.turnout))
        shoulder = joints["neck"] + _rotate(_vec(s * b.shoulder_width / 2, -0.025, 0), torso_yaw, a["lean"], a["bow"])
        raise_, swing = a[f"{side}_raise"], a[f"{side}_swing"]
        fore_raise = np.clip(raise_ + a[f"{side}_elbow_raise"], 0.0, 3.0)
        fore_swing = swing + a[f"{side}_elbow_swing"]
        upper_dir = np.stack([s * np.sin(raise_) * np.cos(swing), -np.cos(raise_), np.sin(raise_) * np.sin(swing)], -1)
        fore_dir = np.stack([s * np.sin(fore_raise) * np.cos(fore_swing), -np.cos(fore_raise),
                             np.sin(fore_raise) * np.sin(fore_swing)], -1)
        upper_dir = _rotate(upper_dir, torso_yaw, a["lean"], a["bow"])
        fore_dir = _rotate(fore_dir, torso_yaw, a["lean"], a["bow"])
        elbow = shoulder + b.upper_arm * upper_dir
        wrist = elbow + b.forearm * fore_dir
        joints.update({f"{side}_hip": hip, f"{side}_knee": knee, f"{side}_ankle": ankle, f"{side}_toe": toe,
                       f"{side}_shoulder": shoulder, f"{side}_elbow": elbow, f"{side}_wrist": wrist,
                       f"{side}_fingers": wrist + b.hand * fore_dir})
    joints["torso_yaw"], joints["hip_yaw"] = torso_yaw, a["hip_yaw"]
    return joints


# ----------------------------------------------------------------------------- shapes


def _clip01(x: np.ndarray) -> np.ndarray:
    return np.minimum(np.maximum(x, 0.0), 1.0)  # np.clip has a slow Python wrapper; this is the hot path


def _cone_sdf(px: np.ndarray, py: np.ndarray, a: tuple[float, float], b: tuple[float, float], ra: float, rb: float):
    """Signed distance to a tapered capsule (hull of two circles), with axis coordinates.

    ``px (1, w)``, ``py (h, 1)`` pixel centres; returns ``(d, along, across)``, each ``(h, w)``.
    Inside is negative. Derivation: in the capsule's frame the side line has outward normal
    ``(s, c)`` with ``s = (ra - rb) / l``; points project onto the line between the two tangent points.
    """
    qx, qy = px - a[0], py - a[1]
    dx, dy = b[0] - a[0], b[1] - a[1]
    length = math.sqrt(dx * dx + dy * dy)
    if length <= abs(ra - rb) + 1e-9:  # the larger end circle swallows the other one
        cx, cy, r = (0.0, 0.0, ra) if ra >= rb else (dx, dy, rb)
        return np.sqrt((qx - cx) ** 2 + (qy - cy) ** 2) - r, qy + 0 * qx, qx + 0 * qy
    ux, uy = dx / length, dy / length
    along, across = qx * ux + qy * uy, qx * uy - qy * ux
    y = np.abs(across)
    s = (ra - rb) / length
    c = math.sqrt(1 - s * s)
    tangent = along * c - y * s
    d = np.where(
        tangent < 0, np.sqrt(along**2 + y**2) - ra,
        np.where(tangent > length * c, np.sqrt((along - length) ** 2 + y**2) - rb, along * s + y * c - ra),
    )
    return d, along, across


def _trapezoid_sdf(px: np.ndarray, py: np.ndarray, bottom: tuple[float, float], top: tuple[float, float],
                   half_bottom: float, half_top: float, radius: float):
    """Signed distance to a symmetric trapezoid (bottom/top edge centres and half widths) rounded by ``radius``.

    The outer outline touches ``bottom``/``top`` and the half widths; returns ``(d, along, across)`` ``(h, w)``.
    """
    dx, dy = top[0] - bottom[0], top[1] - bottom[1]
    length = math.sqrt(dx * dx + dy * dy)
    ux, uy = dx / length, dy / length
    qx, qy = px - bottom[0], py - bottom[1]
    along, across = qx * ux + qy * uy, qx * uy - qy * ux
    core = max(length - 2 * radius, 1e-6)  # the rounded outline = core trapezoid grown by radius
    wb, wt = max(half_bottom - radius, 0.0), max(half_top - radius, 0.0)
    x, y = np.abs(across), along - radius
    to_bottom = np.sqrt((x - np.minimum(x, wb)) ** 2 + y**2)
    to_top = np.sqrt((x - np.minimum(x, wt)) ** 2 + (y - core) ** 2)
    slope = (wt - wb, core)
    tau = _clip01(((x - wb) * slope[0] + y * slope[1]) / (slope[0] ** 2 + slope[1] ** 2))
    to_side = np.sqrt((x - wb - tau * slope[0]) ** 2 + (y - tau * slope[1]) ** 2)
    inside = (y >= 0) & (y <= core) & ((x - wb) * core <= (wt - wb) * y)
    distance = np.minimum(np.minimum(to_bottom, to_top), to_side)
    return np.where(inside, -distance, distance) - radius, along, across


def _quantise(x: np.ndarray) -> np.ndarray:
    """Round to multiples of ``_QUANTUM``: absorbs last-bit differences between libm implementations."""
    return np.round(x / _QUANTUM) * _QUANTUM


@dataclass
class _Part:
    """One body part over all frames, as plain floats per frame (frame units) for a fast render loop."""

    shape: str  # "cone" or "trapezoid"
    a: list[list[float]]  # (T, 2): cone start / trapezoid bottom-edge centre
    b: list[list[float]]  # (T, 2): cone end / trapezoid top-edge centre
    sizes: list[tuple[float, ...]]  # (T, .): (ra, rb) for a cone, (half_bottom, half_top, radius) for a trapezoid
    colour: tuple[float, float, float]
    depth: list[float]  # (T,) z of the part's middle, body units (larger is nearer the camera)
    group: int = 1  # 0: legs and hips (always behind), 1: upper body
    bias: float = 0.0  # added to the depth for sorting: which of two touching parts is in front
    striped: bool = False

    def extent(self, t: int) -> tuple[float, float, float, float]:
        """Bounding box ``(x0, y0, x1, y1)`` in frame units at frame ``t``."""
        (ax, ay), (bx, by), pad = self.a[t], self.b[t], max(self.sizes[t])
        return min(ax, bx) - pad, min(ay, by) - pad, max(ax, bx) + pad, max(ay, by) + pad

    def sdf(self, t: int, px: np.ndarray, py: np.ndarray):
        """``((d, along, across), shading radius)`` on the pixel centres ``px (1, w)``, ``py (h, 1)``."""
        sizes = self.sizes[t]
        if self.shape == "cone":
            return _cone_sdf(px, py, self.a[t], self.b[t], *sizes), 0.5 * (sizes[0] + sizes[1])
        return _trapezoid_sdf(px, py, self.a[t], self.b[t], *sizes), 0.5 * (sizes[0] + sizes[1])


def _build_parts(person: Person, joints: dict[str, np.ndarray], drift: tuple[np.ndarray, np.ndarray]) -> list[_Part]:
    """The body as tapered capsules and trapezoids in frame units, with clothing colours."""
    b, look, scene, k = person.body, person.look, person.scene, person.scene.scale
    j = dict(joints)

    def project(p: np.ndarray) -> list[list[float]]:  # (T, 3) body units -> (T, 2) frame units
        xy = np.stack([scene.center_x + drift[0] + k * p[:, 0], scene.ground_y + drift[1] - k * p[:, 1]], -1)
        return _quantise(xy).tolist()

    def cone(a: str, z: str, ra: float, rb: float, colour, group=1, bias=0.0, striped=False, visible=None) -> _Part:
        depth = _quantise(0.5 * (j[a][:, 2] + j[z][:, 2])).tolist()
        sizes = [(ra * k, rb * k)] * len(depth) if visible is None else [(ra * k * v, rb * k * v) for v in visible]
        return _Part("cone", project(j[a]), project(j[z]), sizes, colour, depth, group, bias, striped)

    def trapezoid(bottom: np.ndarray, top: np.ndarray, widths: tuple[float, float], yaw: np.ndarray,
                  radius: float, colour, group: int, bias: float, striped: bool) -> _Part:
        # An elliptic cross-section (width x depth) seen at `yaw` has this projected half width.
        halves = tuple(k * np.sqrt((w / 2 * np.cos(yaw)) ** 2 + (b.torso_depth / 2 * np.sin(yaw)) ** 2) for w in widths)
        sizes = list(zip(*(_quantise(h).tolist() for h in halves), [radius * k] * len(bottom)))
        depth = _quantise(0.5 * (bottom[:, 2] + top[:, 2])).tolist()
        return _Part("trapezoid", project(bottom), project(top), sizes, colour, depth, group, bias, striped)

    h, up, fwd, right = b.head, j["head_up"], j["head_fwd"], j["head_right"]
    crown = j["chin"] + (h - 0.38 * h) * up
    j["jaw"] = j["chin"] + 0.27 * h * up + 0.08 * h * fwd
    j["crown"], j["neck_top"] = crown, j["chin"] + 0.3 * h * up
    j["cap_l"], j["cap_r"] = (crown + 0.17 * h * up + 0.03 * h * fwd + s * 0.11 * h * right for s in (-1, 1))
    j["eye_l"], j["eye_r"] = (j["chin"] + 0.47 * h * up + 0.33 * h * fwd + s * 0.14 * h * right for s in (-1, 1))
    facing = _quantise(np.clip((fwd[:, 2] - 0.25) / 0.35, 0, 1)).tolist()  # eyes shrink away as the head turns
    j["hair_top"] = crown + 0.04 * h * up - 0.08 * h * fwd
    long_hair = look.hair_style == "long"
    j["hair_end"] = (j["chin"] - 0.5 * h * up if long_hair else crown - 0.25 * h * up) - 0.15 * h * fwd
    torso_up = (j["neck"] - j["pelvis"]) / b.torso
    crotch = j["pelvis"] - _vec(0, 0.07, 0)
    parts = [trapezoid(crotch, j["pelvis"] + 0.05 * torso_up, (b.hip_width + 1.6 * b.leg_radius, b.waist_width),
                       j["hip_yaw"], 0.8 * b.leg_radius, look.pants, 0, 1.0, False),
             trapezoid(j["pelvis"] - (0.03 + look.tunic) * torso_up, j["neck"] + 0.01 * torso_up,
                       (b.waist_width + look.tunic * 0.8, b.shoulder_width + 1.2 * b.arm_radius), j["torso_yaw"],
                       1.2 * b.arm_radius, look.shirt, 1, 0.0, True),
             cone("neck", "neck_top", 0.24 * h, 0.22 * h, look.skin, bias=0.01),
             cone("jaw", "crown", 0.27 * h, 0.38 * h, look.skin, bias=0.03)]
    parts += [cone(f"eye_{s}", f"eye_{s}", 0.045 * h, 0.045 * h, _EYES, bias=0.04, visible=facing) for s in "lr"]
    if look.hair_style != "bald":
        parts += [cone("hair_top", "hair_end", 0.41 * h, (0.36 if long_hair else 0.38) * h, look.hair,
                       bias=0.0 if long_hair else 0.02),
                  cone("cap_l", "cap_r", 0.26 * h, 0.26 * h, look.hair, bias=0.035)]
    r_leg, r_arm = b.leg_radius, b.arm_radius
    for s in ("l", "r"):
        parts += [cone(f"{s}_hip", f"{s}_knee", 1.2 * r_leg, 0.9 * r_leg, look.pants, group=0),
                  cone(f"{s}_knee", f"{s}_ankle", 0.9 * r_leg, 0.65 * r_leg, look.pants, group=0, bias=0.001),
                  cone(f"{s}_ankle", f"{s}_toe", 0.55 * r_leg, 0.7 * r_leg, look.shoes, group=0, bias=0.002)]
        j[f"{s}_palm"] = j[f"{s}_wrist"] + 0.55 * (j[f"{s}_fingers"] - j[f"{s}_wrist"])
        j[f"{s}_sleeve"] = j[f"{s}_shoulder"] + 0.5 * (j[f"{s}_elbow"] - j[f"{s}_shoulder"])
        sleeves, arm = (look.shirt, look.shirt) if look.long_sleeves else (look.skin, look.skin)
        parts += [cone(f"{s}_shoulder", f"{s}_elbow", 1.1 * r_arm, 0.95 * r_arm, sleeves, bias=0.04,
                       striped=look.long_sleeves),
                  cone(f"{s}_elbow", f"{s}_wrist", 0.95 * r_arm, 0.75 * r_arm, arm, bias=0.045, striped=look.long_sleeves),
                  cone(f"{s}_wrist", f"{s}_palm", 0.7 * r_arm, 0.95 * r_arm, look.skin, bias=0.05)]
        if not look.long_sleeves:
            parts.append(cone(f"{s}_shoulder", f"{s}_sleeve", 1.3 * r_arm, 1.2 * r_arm, look.shirt, bias=0.042,
                              striped=True))
    return parts


# ----------------------------------------------------------------------------- rasterising


def _line_cover(distance: np.ndarray, pixels: float, width: float = 1.0) -> np.ndarray:
    """Anti-aliased coverage of a line ``width`` pixels wide at ``distance`` (pixels) from the pixel."""
    return np.clip(width / 2 - distance * pixels + 0.5, 0.0, 1.0)


def _periodic_distance(coord: np.ndarray, period: float) -> np.ndarray:
    """Distance from ``coord`` to the nearest multiple of ``period`` (same units)."""
    return np.abs(coord / period - np.floor(coord / period + 0.5)) * period


def render_background(scene: Scene, size: int) -> np.ndarray:
    """The static background (wall, floor line, floor; optional textures) as float32 ``(size, size, 3)`` in [0, 1].

    Rendered at twice the resolution and box-filtered, so that thin texture lines are anti-aliased.
    """
    n = 2 * size
    c = (np.arange(n, dtype=np.float32) + 0.5) / n
    x, y = c[None, :], c[:, None]  # (1, n), (n, 1)
    hz, period = scene.horizon, scene.texture_period
    lerp = lambda a, b, t: np.asarray(a, np.float32) + t[..., None] * (np.asarray(b, np.float32) - np.asarray(a, np.float32))
    wall = lerp(scene.wall_top, scene.wall_bottom, np.clip(y / hz, 0, 1) + 0 * x)  # (n, n, 3)
    lines = np.zeros((n, n), np.float32)
    if scene.wall_texture == "panels":
        lines += _line_cover(_periodic_distance(x - 0.5, period), n, 1.5) + 0 * y
    elif scene.wall_texture == "bricks":
        row = np.floor(y / (period / 2))
        offset = (row - 2 * np.floor(row / 2)) * period / 2  # every other row shifted by half a brick
        lines += np.maximum(_line_cover(_periodic_distance(y, period / 2), n), _line_cover(_periodic_distance(x + offset, period), n))
    wall *= 1 - 0.12 * lines[..., None]
    depth = np.clip((y - hz) / (1 - hz), 0, 1) + 0 * x  # 0 at the horizon, 1 at the bottom
    floor = lerp(scene.floor_far, scene.floor_near, depth)
    rise = np.maximum(y - hz, 1e-3)  # perspective: floor x spreads in proportion to the height below the horizon
    floor_lines = np.zeros((n, n), np.float32)
    if scene.floor_texture in ("planks", "tiles"):
        floor_lines += _line_cover(_periodic_distance((x - 0.5) / rise, 2 * period) * rise, n)
    if scene.floor_texture == "tiles":
        floor_lines = np.maximum(floor_lines, _line_cover(_periodic_distance(0.05 / rise, 3 * period) * rise * rise / 0.05, n))
    floor *= 1 - 0.15 * (floor_lines * np.clip(depth * 4, 0, 1))[..., None]
    is_floor = np.clip((y - hz) * n + 0.5, 0, 1)[..., None]
    image = wall + is_floor * (floor - wall)
    image *= 1 - 0.35 * _line_cover(np.abs(y - hz - 0.004), n, 0.008 * n)[..., None]  # skirting line
    # Box filter by explicit sums (a fixed summation order keeps it bit-identical everywhere).
    return (image[0::2, 0::2] + image[1::2, 0::2] + image[0::2, 1::2] + image[1::2, 1::2]) * np.float32(0.25)


def _window(extent: tuple[float, float, float, float], size: int) -> tuple[int, int, int, int] | None:
    """Pixel rows/columns ``(i0, i1, j0, j1)`` that an extent in frame units can touch, or None."""
    x0, y0, x1, y1 = extent
    i0, i1 = max(math.floor(y0 * size) - 1, 0), min(math.ceil(y1 * size) + 1, size)
    j0, j1 = max(math.floor(x0 * size) - 1, 0), min(math.ceil(x1 * size) + 1, size)
    return (i0, i1, j0, j1) if i0 < i1 and j0 < j1 else None


def _paint(canvas: np.ndarray, part: _Part, t: int, centres: np.ndarray, look: Look, scale: float) -> None:
    """Composite one part at frame ``t`` onto ``canvas`` ``(S, S, 3)`` float32, in place."""
    size = canvas.shape[0]
    window = _window(part.extent(t), size)
    if window is None or max(part.sizes[t]) <= 0:
        return
    i0, i1, j0, j1 = window
    (d, along, across), radius = part.sdf(t, centres[None, j0:j1], centres[i0:i1, None])
    alpha = _clip01(0.5 - d * size)[..., None]  # anti-aliased edge: one pixel wide ramp
    inside = _clip01(-d / radius)
    shade = (1 - 0.3 * (1 - np.sqrt(inside * (2 - inside))))[..., None]  # round limbs darken at their edges
    colour = np.asarray(part.colour, np.float32)
    if part.striped and look.pattern != "solid":
        period = look.stripe_period * scale
        coord = along if look.pattern == "hstripes" else across
        stripe = _clip01((period / 4 - _periodic_distance(coord, period)) * size + 0.5)[..., None]
        colour = colour + stripe * (np.asarray(look.stripe, np.float32) - colour)
    region = canvas[i0:i1, j0:j1]
    region += alpha * (colour * shade - region)


def _paint_shadow(canvas: np.ndarray, centre: tuple[float, float], radii: tuple[float, float], centres: np.ndarray) -> None:
    """Darken a soft ellipse on the floor under the feet, in place."""
    window = _window((centre[0] - radii[0], centre[1] - radii[1], centre[0] + radii[0], centre[1] + radii[1]), canvas.shape[0])
    if window is None:
        return
    i0, i1, j0, j1 = window
    q = ((centres[None, j0:j1] - centre[0]) / radii[0]) ** 2 + ((centres[i0:i1, None] - centre[1]) / radii[1]) ** 2
    canvas[i0:i1, j0:j1] *= (1 - 0.3 * _clip01(1 - q))[..., None]


def render_person(person: Person, num_frames: int, size: int, fps: float = 15.0, motion_speed: float = 1.0,
                  sway: float = 1.0, start_frame: int = 0) -> np.ndarray:
    """Render frames ``start_frame .. start_frame + num_frames - 1`` of ``person``: ``(T, size, size, 3)`` uint8."""
    times = (start_frame + np.arange(num_frames)) / fps
    angles = joint_angles(person.motion, times, motion_speed, sway)
    joints = pose_skeleton(person.body, angles)
    parts = _build_parts(person, joints, (angles["drift_x"], angles["drift_y"]))
    scene, body = person.scene, person.body
    background = render_background(scene, size)
    centres = (np.arange(size, dtype=np.float32) + 0.5) / size
    feet_x = scene.center_x + angles["drift_x"] + scene.scale * 0.5 * (joints["l_ankle"][:, 0] + joints["r_ankle"][:, 0])
    shadow_radii = (scene.scale * (body.stance / 2 + body.foot), scene.scale * 0.03)
    feet_x, drift_y = _quantise(feet_x).tolist(), _quantise(angles["drift_y"]).tolist()
    frames = np.empty((num_frames, size, size, 3), np.uint8)
    for t in range(num_frames):
        canvas = background.copy()
        ground = (feet_x[t], scene.ground_y + drift_y[t])
        _paint_shadow(canvas, ground, shadow_radii, centres)
        for part in sorted(parts, key=lambda p: (p.group, p.depth[t] + p.bias)):
            _paint(canvas, part, t, centres, person.look, scene.scale)
        frames[t] = np.floor(np.clip(canvas, 0, 1) * 255 + 0.5).astype(np.uint8)
    return frames
