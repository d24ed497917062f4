"""Audio input and output: decode any common format to mono float32 at a target rate, stream long files."""

from .io import AUDIO_EXTENSIONS as AUDIO_EXTENSIONS
from .io import DEFAULT_SAMPLE_RATE as DEFAULT_SAMPLE_RATE
from .io import AudioInfo as AudioInfo
from .io import info as info
from .io import load as load
from .io import stream as stream
from .io import write_audio as write_audio
from .clips import clip_times as clip_times
from .clips import num_clips as num_clips
