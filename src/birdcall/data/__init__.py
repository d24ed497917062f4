"""Labels, BirdCLEF-layout data sets, folds, the decoded-audio cache and balanced sampling."""

from .cache import AudioCache as AudioCache
from .cache import WarmStats as WarmStats
from .dataset import ClipDataset as ClipDataset
from .dataset import ClipTable as ClipTable
from .dataset import read_clip_table as read_clip_table
from .dataset import read_taxonomy as read_taxonomy
from .folds import TRAIN_ONLY as TRAIN_ONLY
from .folds import fold_report as fold_report
from .folds import fold_split as fold_split
from .folds import iterative_stratified_folds as iterative_stratified_folds
from .folds import make_folds as make_folds
from .labels import LabelSet as LabelSet
from .sampling import balanced_sampler as balanced_sampler
from .sampling import class_balanced_weights as class_balanced_weights
