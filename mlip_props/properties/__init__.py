"""Materials and molecular properties from a potential, one module (or package) per property.

Each property is a plan (the structures to evaluate, :mod:`mlip_props.properties.plan`), one
backend evaluation and an analysis of the answers; its one-call function (``equation_of_state``,
``elastic_tensor``, ``phonons``, ``vibrations``, ``diatomic`` ...) does the three. Results are
frozen dataclasses with units in their field names (:mod:`mlip_props.properties.result`). The
campaign layer lists the properties it runs explicitly in
:data:`mlip_props.campaign.builtin.BUILTIN_PROPERTIES`.
"""
