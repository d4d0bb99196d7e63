"""Scheduled deliveries to authorised third parties: grants, incremental signed deliveries, a scheduler.

``registry`` keeps the grants (append-only, validated against ``access``), ``runner`` makes the
deliveries (files, then a manifest signed with Ed25519 as a detached JWS), ``verify`` is what a
recipient runs, ``scheduler`` runs everything on time with one active instance.
"""
