"""The daemon's cycle as a pipeline of stages, one module each.

observe → (views) → reconcile → in-flight fills → assess → record → send; the pair state
(leases, pauses, failure counts, finished contracts) is consulted by all of them. Each stage
owns its own state; ``bot.service.daemon.HedgeDaemon`` only wires them and runs the loop.
"""
