"""Schemas of query expansion and weighted text queries (``api/schemas.py`` uses them).

See :mod:`clipsearch.usecases.expansion` for what the fields mean.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

# A text query: a string, or terms with weights (weighted sum of their unit vectors).
TextQueryField = Annotated[str, Field(min_length=1)] | dict[str, float]
QUERY_DESCRIPTION = (
    "a text, or {term: weight} (at most max_query_terms terms, weights summing to > 0): "
    "the weighted sum of the terms' normalised vectors, renormalised"
)
EXPAND_DESCRIPTION = (
    "also encode the expansion dictionary's expansions of the query (whole query, else the "
    "longest dictionary terms inside it) and search with the mean of the normalised vectors"
)


class ExpansionTerm(BaseModel):
    term: str = Field(description="the dictionary term found in the query")
    expansion: str = Field(description="the expansion used for it")


class ExpansionOut(BaseModel):
    """What `expand` did to one query (or one term of a weighted query)."""

    text: str = Field(description="the query text (or weighted term) that was expanded")
    matched: Literal["query", "terms"] = Field(
        description="query: the whole text is a dictionary term; terms: terms inside it"
    )
    terms: list[ExpansionTerm]
    expansions: list[str] = Field(description="the texts encoded beside `text`")


EXPANSION_EXAMPLE: dict[str, Any] = {
    "text": "红色的圆形",
    "matched": "terms",
    "terms": [{"term": "红色", "expansion": "red"}, {"term": "圆形", "expansion": "circle"}],
    "expansions": ["red circle"],
}


EXPANSIONS_FIELD_DESCRIPTION = "with expand: the expansions used ([] if none matched)"
