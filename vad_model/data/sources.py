"""Where the audio comes from: Debian packages, espeak-ng voices, and what is forbidden.

Two disjoint pools, ``train`` and ``dev``. A third evaluation (not ours) uses the sources in
``FORBIDDEN_*``: they are never read, for training, tuning or our own dev set, and
``check_path`` refuses them so a careless glob cannot pull them in.

Apt packages needed to build the data (see README):
    train: asterisk-core-sounds-en-wav asterisk-core-sounds-es-wav asterisk-core-sounds-fr-wav
           fillets-ng-data-nl ktuberling-data gcin-voice tuxpaint-data asterisk-moh-opsound-wav
           singularity-music wesnoth-1.16-music extremetuxracer-data supertux-data
           frozen-bubble-data lincity-ng-data minetest-data lbreakout2-data chromium-bsu-data
           pingus-data klettres-data espeak-ng sox libsox-fmt-all
    dev:   asterisk-prompt-es-co asterisk-prompt-fr-armelle fillets-ng-data drascula-music
"""

from __future__ import annotations

import fnmatch
import glob
import os
from dataclasses import dataclass, field

APT_TRAIN = [
    "asterisk-core-sounds-en-wav",
    "asterisk-core-sounds-es-wav",
    "asterisk-core-sounds-fr-wav",
    "fillets-ng-data-nl",
    "ktuberling-data",
    "gcin-voice",
    "tuxpaint-data",
    "asterisk-moh-opsound-wav",
    "singularity-music",
    "wesnoth-1.16-music",
    "extremetuxracer-data",
    "supertux-data",
    "frozen-bubble-data",
    "lincity-ng-data",
    "minetest-data",
    "lbreakout2-data",
    "chromium-bsu-data",
    "pingus-data",
    "klettres-data",
    "espeak-ng",
    "sox",
    "libsox-fmt-all",
]
APT_DEV = [
    "asterisk-prompt-es-co",
    "asterisk-prompt-fr-armelle",
    "fillets-ng-data",
    "drascula-music",
]

# Never read these (another evaluation owns them).
FORBIDDEN_GLOBS = [
    "*/asterisk/sounds/ru*",
    "*/asterisk/sounds/it*",
    "*asterisk-prompt-it-menardi*",
    "*/fillets-ng/sound/*/cs/*",
    "*asc-music*",
    "*/asc/music/*",
    "*openttd*",
    "*opensfx*",
    "*/fillets-ng/sound/linux/en/key*",
    "*/fillets-ng/sound/linux/en/space*",
    "*/fillets-ng/sound/linux/en/enter*",
    "*/sounds/freedesktop/stereo/phone-*",
    "*manolo_camp-morning_coffee*",
    "*reno_project-system*",
]
FORBIDDEN_ESPEAK = {"pl", "hu", "tr"}


class ForbiddenSourceError(ValueError):
    """Raised when a path or voice from the held-out evaluation sources is requested."""


def check_path(path: str) -> str:
    """Return ``path`` unchanged; raise ForbiddenSourceError if it is a forbidden source."""
    low = path.lower()
    for pat in FORBIDDEN_GLOBS:
        if fnmatch.fnmatch(low, pat.lower()):
            raise ForbiddenSourceError(f"forbidden evaluation source: {path}")
    return path


def check_voice(voice: str) -> str:
    """Return ``voice``; raise ForbiddenSourceError for espeak-ng's Polish/Hungarian/Turkish."""
    if voice.split("+")[0].split("-")[0] in FORBIDDEN_ESPEAK:
        raise ForbiddenSourceError(f"forbidden espeak-ng voice: {voice}")
    return voice


# espeak-ng voices. Dev voices are held out of training entirely.
ESPEAK_DEV = ["de", "ja", "yue", "ko", "vi", "en-gb-scotland"]
ESPEAK_TRAIN = [
    "cmn",
    "cmn",
    "cmn",
    "cmn",  # Mandarin weighted up: our callers are mostly Chinese
    "en-us",
    "en-gb",
    "en-029",
    "en-gb-x-rp",
    "es",
    "es-419",
    "fr-fr",
    "pt-br",
    "nl",
    "ru",
    "it",
    "sv",
    "da",
    "fi",
    "cs",
    "sk",
    "ro",
    "el",
    "bg",
    "uk",
    "ar",
    "fa",
    "hi",
    "bn",
    "ta",
    "th",
    "id",
    "ms",
    "sw",
    "af",
    "hr",
    "sr",
    "ca",
    "eu",
    "cy",
    "lt",
    "lv",
    "et",
    "ka",
    "hy",
    "az",
    "kk",
    "ur",
    "ne",
    "mr",
    "he",
    "is",
    "ga",
]
ESPEAK_VARIANTS = [
    "",
    "+m1",
    "+m2",
    "+m3",
    "+m4",
    "+m7",
    "+f1",
    "+f2",
    "+f3",
    "+f4",
    "+f5",
    "+klatt",
    "+croak",
    "+whisper",
]

# Mandarin phrases of the kind an outbound call hears (espeak-ng's cmn voice reads hanzi).
ZH_PHRASES = [
    "您好，请问是张先生吗？",
    "我这边是客服中心的，打扰您一分钟。",
    "好的，没问题。",
    "不需要，谢谢。",
    "你们是哪里？",
    "我现在在开会，晚点再说吧。",
    "喂？喂？听得到吗？",
    "对，是我。",
    "多少钱一个月？",
    "可以发个短信给我吗？",
    "我考虑一下。",
    "不用了，我已经有了。",
    "什么时候可以办理？",
    "你说慢一点。",
    "嗯，嗯，然后呢？",
    "行，那你把资料发过来。",
    "我不感兴趣。",
    "请问贷款利息是多少？",
    "明天下午三点。",
    "我在开车，不方便。",
    "信号不太好。",
    "你再说一遍。",
    "这个活动到什么时候结束？",
    "谢谢，再见。",
]
EN_PHRASES = [
    "Hello, who is this?",
    "Yes, speaking.",
    "No thanks, I'm not interested.",
    "Can you call back later?",
    "How much does it cost per month?",
    "Sorry, I didn't catch that.",
    "Okay, go ahead.",
    "I'm driving right now.",
    "Send me an email please.",
    "What company are you calling from?",
]

DEV_SPEECH_GLOBS = [
    "/usr/share/asterisk/sounds/es/*.gsm",  # asterisk-prompt-es-co (Colombian Spanish)
    "/usr/share/asterisk/sounds/fr/*.gsm",  # asterisk-prompt-fr-armelle (French)
    "/usr/share/asterisk/sounds/fr/*/*.gsm",
]
# Not fillets-ng-data's sound/*/en/: it is mostly sound effects (growls, phones, machines), not speech.
TRAIN_SPEECH_GLOBS = [
    "/usr/share/asterisk/sounds/en_US_f_Allison/**/*.wav",
    "/usr/share/asterisk/sounds/es_MX_f_Allison/**/*.wav",
    "/usr/share/asterisk/sounds/fr_CA_f_June/**/*.wav",
    # fillets-ng-data-nl, Dutch actors: the two fish's dialogue lines (-m- / -v-) and the help
    # lines; the rest of the folder holds grunts and other non-speech vocal effects.
    "/usr/share/games/fillets-ng/sound/*/nl/*-[mv]-*.ogg",
    "/usr/share/games/fillets-ng/sound/*/nl/help*.ogg",
    # ktuberling-data: the toy's words, recorded by its translators in 25 languages (one or
    # two speakers each): many real voices, short words.
    "/usr/share/ktuberling/sounds/*/*.ogg",
    # gcin-voice: every Mandarin syllable (zhuyin) by two native speakers (3.ogg, 5.ogg);
    # joined into pseudo-phrases by build_dataset (see MANDARIN_SYLLABLES).
    "/usr/share/gcin-voice/ogg/*/*.ogg",
    # tuxpaint-data: each stamp's description read aloud, one speaker per language (11, most
    # with 700-900 lines). Only the *_desc* files: the stamps' other sounds mix animal calls
    # with spoken names.
    "/usr/share/tuxpaint/stamps/**/*_desc*.ogg",
    # klettres-data: letters and syllables read by one native speaker per language, in 13 of
    # its 20 languages. The other seven (ar cs he hu it nb ru) sit on a hiss less than 30 dB
    # under the voice, which the energy labeller would call speech (70-100 % of each file).
    *(
        f"/usr/share/klettres/{lang}/*/*.ogg"
        for lang in "da de en en_GB es fr lt ml nds nl pt_BR tn uk".split()
    ),
]
MANDARIN_SYLLABLES = "/usr/share/gcin-voice/"

# How often each family of recorded speakers is drawn for training, whatever its file count
# (Allison's thousands of prompts would otherwise drown the other voices). Inside a family
# each speaker group (see speaker_group) is equally likely, then each of its utterances.
TRAIN_SPEECH_FAMILIES = {
    "asterisk": 0.25,
    "fillets": 0.1,
    "ktuberling": 0.15,
    "tuxpaint": 0.15,
    "gcin": 0.2,
    "klettres": 0.15,
}
TRAIN_MUSIC_GLOBS = [
    "/usr/share/asterisk/moh/macroform-*.wav",
    "/usr/share/games/singularity/music/**/*.ogg",
    "/usr/share/games/singularity/music/*.ogg",
    "/usr/share/games/wesnoth/1.16/data/core/music/*.ogg",  # orchestral, 41 tracks
    "/usr/share/games/etr/music/*.ogg",  # extremetuxracer-data
    "/usr/share/games/supertux2/music/*/*.ogg",  # 50 tracks: chiptune, rock, ambient
    "/usr/share/games/frozen-bubble/snd/*zik*.ogg",
    "/usr/share/games/lincity-ng/music/default/*.ogg",
    "/usr/share/games/chromium-bsu/wav/music_*.wav",
]
# Sound effects dropped into street/office noise: impacts, footsteps, doors, machines, water,
# fire, a city's ambient loops. Never a voice (voices are never noise-only material): not
# tuxpaint's spoken prompts (areyousure, giggle, prompt, tuxok, youcannot), nor the games'
# spoken or grunted effects, nor lincity-ng's loops of places full of people (residential,
# market, school...), which may hold voices: TRAIN_SFX_EXCLUDED lists them, and the music
# tracks that share the effects' folders.
TRAIN_SFX_GLOBS = [
    "/usr/share/games/minetest/games/minetest_game/mods/*/sounds/*.ogg",
    "/usr/share/games/lincity-ng/sounds/*.wav",
    "/usr/share/games/supertux2/sounds/*.*",
    "/usr/share/games/frozen-bubble/snd/*.ogg",
    "/usr/share/games/lbreakout2/sounds/*.wav",
    "/usr/share/games/chromium-bsu/wav/*.wav",
    "/usr/share/games/pingus/data/sounds/*.wav",
    "/usr/share/games/etr/sounds/*.wav",
    *(
        f"/usr/share/tuxpaint/sounds/{name}.wav"
        for name in "bleep bubble click eraser1 eraser2 fill flip harp keyclick line_end line_start "
        "mirror return save scroll shrink stamp thick thin typewriterbell".split()
    ),
]
TRAIN_SFX_EXCLUDED = (
    "*/minetest/*/player_damage*",
    "*/lincity-ng/sounds/residential*",
    "*/lincity-ng/sounds/market*",
    "*/lincity-ng/sounds/school*",
    "*/lincity-ng/sounds/university*",
    "*/lincity-ng/sounds/health*",
    "*/lincity-ng/sounds/commune*",
    "*/lincity-ng/sounds/shanty*",
    "*/lincity-ng/sounds/monument*",
    *(
        f"*/supertux2/sounds/{name}*"
        for name in "excellent welldone grunts hurt kill yeti mr_tree tree_howling".split()
    ),
    *(f"*/frozen-bubble/snd/{name}*" for name in "zik noh hurry chatted snore".split()),
    *(
        f"*/lbreakout2/sounds/{name}*"
        for name in "dammit damn excellent verygood wontgiveup".split()
    ),
    "*/chromium-bsu/wav/music_*",
    *(f"*/pingus/data/sounds/{name}*" for name in "goodidea letsgo ohno yipee".split()),
)
DEV_MUSIC_GLOBS = [
    "/usr/share/games/fillets-ng/music/*.ogg",
    "/usr/share/scummvm/drascula/audio/*.ogg",  # drascula-music
]
DEV_SFX_GLOBS = ["/usr/share/games/fillets-ng/sound/share/*.ogg"]

AUDIO_EXT = (".wav", ".gsm", ".ogg", ".mp3", ".flac", ".mod", ".xm", ".s3m", ".it")


def speaker_group(path: str) -> str:
    """``family/speaker`` of a recorded speech file, e.g. "ktuberling/de"; the family (the part
    before the slash) is a key of TRAIN_SPEECH_FAMILIES."""
    if "/ktuberling/sounds/" in path:
        lang = path.split("/ktuberling/sounds/")[1].split("/")[0].split("@")[0]  # sr@latin: sr
        return "ktuberling/" + lang
    if path.startswith(MANDARIN_SYLLABLES):
        return "gcin/" + os.path.basename(path)
    if "/tuxpaint/stamps/" in path:
        lang = os.path.basename(path).rsplit("_desc", 1)[1].removeprefix("_").split(".")[0]
        return "tuxpaint/" + (lang or "en")
    if "/fillets-ng/" in path:
        return "fillets/nl"
    if "/klettres/" in path:
        return "klettres/" + path.split("/klettres/")[1].split("/")[0]
    return "asterisk/" + path.split("/asterisk/sounds/")[1].split("/")[0]


# Prompt sets ship beeps and tones beside their words; the labeller would call them speech.
# Training leaves them out. The dev pool keeps its two (es/beep.gsm, es/beeperr.gsm: 2 of 512
# files, about 0.2 % of its utterances) so that its draws stay those of every dev table so far.
NON_SPEECH_PROMPTS = ("*/beep.*", "*/beeperr.*", "*-2tone.*", "*/silence/*")


def _expand(globs: list[str], exclude: tuple[str, ...] = ()) -> list[str]:
    """The audio files the globs match, less the ``exclude`` patterns (lower-case fnmatch)
    and the forbidden sources."""
    out: set[str] = set()
    for g in globs:
        for p in glob.glob(g, recursive=True):
            if not os.path.isfile(p) or not p.lower().endswith(AUDIO_EXT):
                continue
            if any(fnmatch.fnmatch(p.lower(), pat) for pat in exclude):
                continue
            try:
                out.add(check_path(p))
            except ForbiddenSourceError:
                continue
    return sorted(out)


@dataclass
class SourcePool:
    """Files and voices for one split."""

    speech_files: list[str]
    espeak_voices: list[str]
    music_files: list[str]
    sfx_files: list[str] = field(default_factory=list)
    tone_set: str = "train"
    speech_families: dict[str, float] | None = None  # None: every recorded file equally likely


def pool(split: str) -> SourcePool:
    """Return the source pool for ``split`` ("train" or "dev")."""
    if split == "train":
        return SourcePool(
            speech_files=_expand(TRAIN_SPEECH_GLOBS, exclude=NON_SPEECH_PROMPTS),
            espeak_voices=[check_voice(v) for v in ESPEAK_TRAIN],
            music_files=_expand(TRAIN_MUSIC_GLOBS),
            sfx_files=_expand(TRAIN_SFX_GLOBS, exclude=TRAIN_SFX_EXCLUDED),
            tone_set="train",
            speech_families=TRAIN_SPEECH_FAMILIES,
        )
    if split == "dev":
        return SourcePool(
            speech_files=_expand(DEV_SPEECH_GLOBS),
            espeak_voices=[check_voice(v) for v in ESPEAK_DEV],
            music_files=_expand(DEV_MUSIC_GLOBS),
            sfx_files=_expand(DEV_SFX_GLOBS),
            tone_set="dev",
        )
    raise ValueError(f"unknown split {split!r}")
