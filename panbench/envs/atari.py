"""``atari-*``: Atari 2600 games from the Arcade Learning Environment, objects read through OCAtari.

One env per game (``atari-pong``, ``atari-breakout``, ...; the table is
:data:`panbench.envs._atari_games.GAMES`). The emulator is ``ale-py`` (its wheels bundle the
ROMs) run deterministically: ``repeat_action_probability=0``, a fixed frameskip (every action is
repeated for ``frameskip`` emulator frames and the rewards summed; in games whose sprites
flicker (``Game.flicker`` > 1), the frame is the step's last emulator frame with the sprites of
the ``flicker - 1`` frames before it laid under it where it shows background, so that sprites
drawn on alternate frames, such as Ms. Pac-Man's ghosts (one per frame), all show; DQN's
per-pixel maximum of two frames does the same but mixes sprite and background colours), and a seeded warm-up: reset
plays a seeded number (``warmup``) of seeded random actions from the power-on state (after the
game's opening, in which the player cannot move, for the games that have one), so seeds give
diverse starts. A state holds a cloned emulator state (``ALEInterface.cloneState``), so stepping
any state, in any order, is exactly what an uninterrupted run would do: branching for planning and
counterfactuals is exact.

Truth and perception: ``observe`` gives the objects in fixed slots per category (see the game
table), ``positions``/``present`` as the pixels of the rendered frame show them, read by the same
tolerant palette detector as ``perceive`` (:mod:`panbench.envs._atari_perceive`), so a perfect
prediction is read exactly as the truth; objects too small to survive the resize to the task's
resolution are absent in both. The RAM truth from OCAtari is given beside it (``ram_positions``,
``ram_sizes``, ``ram_present``, in the same slots), with the step's ``reward`` and ``terminal``
flag. docs/envs.md tabulates how the detector agrees with the RAM truth at native resolution and
after blur, noise and downscaling.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from panbench.envs._atari_games import GAMES, NATIVE_SHAPE, Game, action_text
from panbench.envs._atari_perceive import (
    Palette,
    import_ocatari_game,
    perceive_objects,
    ram_objects,
    ram_slots,
)
from panbench.envs.base import Action, Env, Observation
from panbench.errors import ConfigError

INSTALL_HINT = (
    "Install them with: pip install 'panbench[atari]' && pip install --no-deps ocatari==2.2.1 "
    "(OCAtari's own requirements pin numpy<2; panbench uses only its RAM tables)."
)


def import_ale() -> Any:
    """Imports ``ale_py`` and ``ocatari`` (checked together: every Atari env needs both).

    Raises:
        ConfigError: either package is missing (the message says what to install).
    """
    try:
        import ale_py
        import ocatari.ram  # noqa: F401
    except ImportError as err:
        raise ConfigError(
            f"Expected the `ale-py` and `ocatari` packages for the Atari envs, but got: {err}. "
            + INSTALL_HINT
        ) from err
    return ale_py


def _codes(rgb: np.ndarray) -> np.ndarray:
    """uint32 [...] one code per colour of uint8 [..., 3]."""
    x = rgb.astype(np.uint32)
    return (x[..., 0] << 16) | (x[..., 1] << 8) | x[..., 2]


def compose_flicker(last: np.ndarray, previous: np.ndarray, background: np.ndarray) -> np.ndarray:
    """uint8 [H, W, 3]: ``last`` with ``previous`` shown where ``last`` is a background colour
    (any of ``background`` uint8 [N, 3]) and ``previous`` is not."""
    bg = _codes(background)
    take = np.isin(_codes(last), bg) & ~np.isin(_codes(previous), bg)
    out = last.copy()
    out[take] = previous[take]
    return out


@dataclass(frozen=True, eq=False)
class AtariState:
    """An immutable Atari state.

    Attributes:
        ale: the emulator state (``ALEState`` from ``cloneState``).
        screen: uint8 [210, 160, 3] the native screen after the step.
        ram: uint8 [128] the console RAM after the step.
        reward: the reward of the step that led here (0 after reset).
        terminal: whether the game is over (a terminal state absorbs every action).
        t: env steps since reset.
    """

    ale: Any
    screen: np.ndarray
    ram: np.ndarray
    reward: float = 0.0
    terminal: bool = False
    t: int = 0


class AtariEnv(Env):
    """One Atari game (subclasses set ``game``); see the module docstring.

    Actions: the game's minimal ALE action set, index i is the i-th entry of
    ``getMinimalActionSet()``; ``text`` names it ("move the green paddle up", "fire", "wait"),
    ``meaning`` gives the ALE name through :meth:`meaning`. ``NOOP`` has kind ``wait``.

    Observation keys: ``positions`` float64 [K, 2] (x, y) in pixels of the rendered frame,
    ``present`` bool [K], ``sizes`` float64 [K] (native pixels), ``categories`` int64 [K] (index
    into the game's categories); ``observe`` adds ``ram_positions`` [K, 2] (rendered-frame pixels),
    ``ram_present`` [K], ``ram_sizes`` [K] (native pixels), ``reward`` float64 [] and ``terminal``
    bool [].

    Args:
        resolution: side of the square rendered frame (the native 210x160 screen squashed with
            area averaging).
        frameskip: emulator frames per env step (the action repeats; rewards add up).
        warmup: reset plays between 0 and ``warmup`` seeded random actions.
    """

    game: ClassVar[Game]
    version: ClassVar[str] = "1"
    resolution_multiple: ClassVar[int] = 4
    min_resolution: ClassVar[int] = 32
    max_resolution: ClassVar[int] = 256

    def __init__(self, resolution: int = 64, frameskip: int = 4, warmup: int = 30) -> None:
        super().__init__(resolution)
        for option, value, low, high in (
            ("frameskip", frameskip, 1, 8),
            ("warmup", warmup, 0, 500),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ConfigError(
                    f"Expected {option} to be an integer from {low} to {high} for env "
                    f"{self.name!r}, but got {value!r}."
                )
        self._record_config(frameskip=frameskip, warmup=warmup)
        self.frameskip, self.warmup = frameskip, warmup
        self.num_entities = self.game.num_slots
        self._palette = Palette(self.game)
        self._categories = np.repeat(
            np.arange(len(self.game.categories)), [c.count for c in self.game.categories]
        )
        self._background = np.asarray(self.game.background, dtype=np.uint8)
        self._ale: Any = None
        self._last: AtariState | None = None

    def __getstate__(self) -> dict[str, Any]:
        # The emulator does not pickle; rebuild it from the config.
        return {"config": self.config}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state["config"])  # type: ignore[misc]

    # ----------------------------------------------------------------------------------- emulator
    def _emulator(self) -> Any:
        if self._ale is None:
            ale_py = import_ale()
            ale = ale_py.ALEInterface()
            ale.setLoggerMode(ale_py.LoggerMode.Error)
            ale.setInt("random_seed", 0)
            ale.setFloat("repeat_action_probability", 0.0)
            ale.setInt("frame_skip", 1)
            ale.loadROM(ale_py.roms.get_rom_path(self.game.rom))
            ale.reset_game()
            self._actions = list(ale.getMinimalActionSet())
            for _ in range(self.game.intro):  # the opening in which the player cannot move
                ale.act(self._actions[0])
            self._ale = ale
            self._boot = ale.cloneState()
            self._ram_module = import_ocatari_game(self.game)
        return self._ale

    def _snapshot(
        self, reward: float, terminal: bool, t: int, earlier: Sequence[np.ndarray] = ()
    ) -> AtariState:
        ale = self._ale
        screen = ale.getScreenRGB()
        for previous in reversed(earlier):
            screen = compose_flicker(screen, previous, self._background)
        state = AtariState(ale.cloneState(), screen, ale.getRAM().copy(), reward, terminal, t)
        self._last = state
        return state

    def meaning(self, index: int) -> str:
        """The ALE action meaning (``"UPFIRE"``) of action ``index``."""
        self._emulator()
        return str(self._actions[index].name)

    # ----------------------------------------------------------------------------------- dynamics
    @property
    def num_actions(self) -> int:
        self._emulator()
        return len(self._actions)

    def actions(self, state: AtariState) -> list[Action]:
        self._emulator()
        out = []
        for i, a in enumerate(self._actions):
            text = action_text(self.game, a.name)
            out.append(Action(index=i, text=text, kind="wait" if a.name == "NOOP" else "agent"))
        return out

    def reset(self, seed: int) -> AtariState:
        ale = self._emulator()
        ale.restoreState(self._boot)
        rng = np.random.default_rng([int(seed), 17])
        reward = 0.0
        for _ in range(int(rng.integers(0, self.warmup + 1))):
            a = self._actions[int(rng.integers(len(self._actions)))]
            for _ in range(self.frameskip):
                reward += ale.act(a)
            if ale.game_over():
                ale.restoreState(self._boot)
        return self._snapshot(0.0, bool(ale.game_over()), 0)

    def _step(self, state: AtariState, action: Action) -> AtariState:
        ale = self._emulator()
        if state.terminal:
            return AtariState(state.ale, state.screen, state.ram, 0.0, True, state.t + 1)
        if self._last is not state:  # the emulator holds another state: restore this one
            ale.restoreState(state.ale)
        a = self._actions[action.index]
        reward = 0.0
        earlier: list[np.ndarray] = []
        for k in range(self.frameskip):
            if 0 < self.frameskip - k < self.game.flicker:
                earlier.append(ale.getScreenRGB())
            reward += ale.act(a)
            if ale.game_over():
                break
        return self._snapshot(float(reward), bool(ale.game_over()), state.t + 1, earlier)

    def outcome(self, state: AtariState) -> tuple[float, bool]:
        return float(state.reward), bool(state.terminal)

    # ----------------------------------------------------------------------------------- pixels
    def render(self, state: AtariState) -> np.ndarray:
        import cv2

        res = self.resolution
        out = cv2.resize(state.screen, (res, res), interpolation=cv2.INTER_AREA)
        return np.ascontiguousarray(out, dtype=np.uint8)

    def _to_frame(self, native_xy: np.ndarray) -> np.ndarray:
        """Native screen coordinates (continuous) -> pixel-centre coordinates of the render."""
        scale = np.array([self.resolution / NATIVE_SHAPE[1], self.resolution / NATIVE_SHAPE[0]])
        return native_xy * scale - 0.5

    def perceive(self, frame: np.ndarray) -> Observation:
        """Objects read from a uint8 [H, W, 3] frame of any size (positions in render pixels)."""
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[-1] != 3 or frame.dtype != np.uint8:
            raise ConfigError(
                f"Expected a uint8 frame of shape [H, W, 3] for env {self.name!r}, but got "
                f"{frame.dtype} {tuple(frame.shape)}."
            )
        found = perceive_objects(self._palette, frame)
        return {
            "positions": self._to_frame(found["positions"]),
            "present": found["present"],
            "sizes": found["sizes"],
            "categories": self._categories.copy(),
        }

    def perceive_native(self, screen: np.ndarray) -> dict[str, np.ndarray]:
        """Objects of a frame in native screen pixels (positions, sizes, present)."""
        return perceive_objects(self._palette, screen)

    def ram_truth(self, state: AtariState) -> dict[str, np.ndarray]:
        """OCAtari's RAM objects of ``state`` in slots, native pixels (positions, boxes, ...)."""
        self._emulator()
        return ram_slots(self.game, ram_objects(self._ram_module, self.game, state.ram))

    def observe(self, state: AtariState) -> Observation:
        obs = self.perceive(self.render(state))
        ram = self.ram_truth(state)
        obs.update(
            ram_positions=self._to_frame(ram["positions"]),
            ram_present=ram["present"],
            ram_sizes=ram["sizes"],
            reward=np.asarray(state.reward, dtype=np.float64),
            terminal=np.asarray(state.terminal, dtype=bool),
        )
        return obs


def _game_env(game: str, class_name: str, doc: str) -> type[AtariEnv]:
    spec = GAMES[game]
    cls = type(
        class_name,
        (AtariEnv,),
        {
            "game": spec,
            "name": f"atari-{game}",
            "description": f"Atari {spec.title} (ALE + OCAtari): {doc}",
            "__module__": __name__,
        },
    )
    return cls


PongEnv = _game_env("pong", "PongEnv", "two paddles and a ball")
BreakoutEnv = _game_env("breakout", "BreakoutEnv", "a paddle, a ball, a wall of bricks")
BoxingEnv = _game_env("boxing", "BoxingEnv", "two boxers seen from above")
FreewayEnv = _game_env("freeway", "FreewayEnv", "a chicken crossing ten lanes of cars")
MsPacmanEnv = _game_env("mspacman", "MsPacmanEnv", "Ms. Pac-Man and four ghosts in a maze")
SpaceInvadersEnv = _game_env(
    "spaceinvaders", "SpaceInvadersEnv", "a cannon, shields and a block of aliens"
)
SeaquestEnv = _game_env("seaquest", "SeaquestEnv", "a submarine, sharks, enemy submarines, divers")
AsterixEnv = _game_env("asterix", "AsterixEnv", "Asterix and lanes of enemies and items")

#: env name -> class, for the registry (``panbench.envs.ENVS``)
ATARI_ENVS: dict[str, type[AtariEnv]] = {
    cls.name: cls
    for cls in (
        PongEnv,
        BreakoutEnv,
        BoxingEnv,
        FreewayEnv,
        MsPacmanEnv,
        SpaceInvadersEnv,
        SeaquestEnv,
        AsterixEnv,
    )
}
