"""The task heads and recipes of chapter 7, each in its own module (introduced in chapter 7).

- `ner`: named-entity recognition as token classification (labels aligned to word pieces,
  seqeval entity scores, a most-frequent-tag baseline, entities with character spans);
- `qa`: extractive question answering (long contexts in strided windows, n-best span decoding,
  SQuAD exact match and F1, a lexical-overlap baseline);
- `retrieval`: sentence embeddings (mean pooling), cosine search, recall@k and MRR, and
  contrastive fine-tuning with in-batch negatives;
- `instruct`: instruction tuning of a chat model with the loss on the answer only, batched
  generation, ROUGE / BLEU / chrF.

Every model here trains with `course_utils.training.train` or `make_trainer` unchanged.
Import a module by name (``from course_utils.tasks import ner``); nothing is imported eagerly.
"""

__all__ = ["instruct", "ner", "qa", "retrieval"]
