"""Labels and BirdCLEF-layout data sets."""

from .dataset import ClipDataset as ClipDataset
from .dataset import ClipTable as ClipTable
from .dataset import read_clip_table as read_clip_table
from .dataset import read_taxonomy as read_taxonomy
from .labels import LabelSet as LabelSet
