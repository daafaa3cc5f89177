"""Shared base for typed component args.

Args are frozen pydantic models: built from Python with snake_case names, or from
stack config with the camelCase keys users write. Unknown keys are always errors.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict
from pydantic.alias_generators import to_camel

DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
# Kubernetes resource.Quantity, as the API server parses it.
QUANTITY = re.compile(r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$")


class Spec(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=True,
        strict=False,
        # Field docstrings become descriptions: the README's config reference is generated from them.
        use_attribute_docstrings=True,
    )


def _dns_label(value: str) -> str:
    if not DNS_LABEL.match(value):
        raise ValueError(
            f"{value!r} is not a valid DNS label (lower-case letters, digits and '-', "
            "starting with a letter, at most 63 characters)"
        )
    return value


def _quantity(value: object) -> object:
    # YAML turns `cpu: 8` into an int; Kubernetes wants the string form.
    if isinstance(value, bool):
        raise ValueError("must be a Kubernetes quantity such as '8' or '32Gi'")
    if isinstance(value, (int, float)):
        value = str(value)
    if not isinstance(value, str) or not QUANTITY.match(value):
        raise ValueError(f"{value!r} is not a Kubernetes quantity such as '8', '500m' or '32Gi'")
    return value


DnsLabel = Annotated[str, AfterValidator(_dns_label)]
Quantity = Annotated[str, BeforeValidator(_quantity)]
