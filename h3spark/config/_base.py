"""The base of every config model: unknown keys are errors, values are checked once."""

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """A config section: unknown keys are rejected (with a did-you-mean), fields are typed."""

    model_config = ConfigDict(extra="forbid", validate_default=True, frozen=False)
