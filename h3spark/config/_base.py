"""The base of every config model: unknown keys are errors, values are checked once."""

import types
from typing import Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic_core import PydanticCustomError

#: Errors raised by a model about one of its keys carry the key's dotted path below the model
#: in ``ctx[ERROR_AT]``, so the loader can name that key and its line.
ERROR_AT = "at"


class StrictModel(BaseModel):
    """A config section: unknown keys are rejected (with a did-you-mean), fields are typed.

    Numbers are finite, and true/false are not numbers (pydantic alone reads ``batch_size: true`` as 1).
    """

    model_config = ConfigDict(extra="forbid", validate_default=True, frozen=False, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_bool_for_a_number(cls, data):
        if isinstance(data, dict):
            for name, field in cls.model_fields.items():
                value = data.get(field.alias or name)
                if isinstance(value, bool) and _is_number(field.annotation):
                    raise PydanticCustomError("bool_for_a_number", "must be a number; true and false are not numbers. "
                                              "Got {value} instead.", {ERROR_AT: name, "value": str(value).lower()})
        return data


def _is_number(annotation) -> bool:
    """True for int, float and their optional forms, where a bool is never meant."""
    members = get_args(annotation) if get_origin(annotation) in (Union, types.UnionType) else (annotation,)
    return bool(set(members) & {int, float}) and bool not in members
