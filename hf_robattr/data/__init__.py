"""hf_robattr.data: Hub datasets by name, embedded offline defaults, transforms (and their cache), an offline tokenizer."""

from .embedded import (
    EMBEDDED_DATASETS,
    GENERATED_DATASETS,
    SENTIMENT_NEGATIVE_WORDS,
    SENTIMENT_POSITIVE_WORDS,
    load_embedded_dataset,
    make_digits,
    make_marked_objects,
    make_synthetic_images,
    make_synthetic_sentiment,
    split_dataset,
)
from .loading import (
    IMAGE_COLUMN_CANDIDATES,
    TEXT_COLUMN_CANDIDATES,
    label_names,
    load_classification_dataset,
    resolve_column,
    standardize_splits,
    truncate_dataset,
)
from .prose import PROSE_SOURCES, english_prose, prose_fingerprint
from .tensor_cache import DEFAULT_IMAGE_CACHE_BYTES, IMAGE_TENSOR_CACHE, TensorCache
from .tokenizer import SPECIAL_TOKENS, build_offline_tokenizer
from .transforms import (
    ANNOTATION_KEYS,
    MASK_COLUMN,
    RATIONALE_COLUMN,
    DataCollatorWithAnnotations,
    ImageClassificationTransform,
    TextClassificationTransform,
    model_inputs,
    processed_pixels,
)


__all__ = [
    "ANNOTATION_KEYS",
    "DEFAULT_IMAGE_CACHE_BYTES",
    "EMBEDDED_DATASETS",
    "GENERATED_DATASETS",
    "IMAGE_COLUMN_CANDIDATES",
    "IMAGE_TENSOR_CACHE",
    "MASK_COLUMN",
    "PROSE_SOURCES",
    "RATIONALE_COLUMN",
    "SENTIMENT_NEGATIVE_WORDS",
    "SENTIMENT_POSITIVE_WORDS",
    "SPECIAL_TOKENS",
    "TEXT_COLUMN_CANDIDATES",
    "DataCollatorWithAnnotations",
    "ImageClassificationTransform",
    "TensorCache",
    "TextClassificationTransform",
    "build_offline_tokenizer",
    "english_prose",
    "label_names",
    "load_classification_dataset",
    "load_embedded_dataset",
    "make_digits",
    "make_marked_objects",
    "make_synthetic_images",
    "make_synthetic_sentiment",
    "model_inputs",
    "processed_pixels",
    "prose_fingerprint",
    "resolve_column",
    "split_dataset",
    "standardize_splits",
    "truncate_dataset",
]
