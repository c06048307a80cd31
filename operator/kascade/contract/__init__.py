"""The task contract: what a task gets from whoever starts it (environment names, the
outputs format and limit, the packed project), shared by the hosts and the runtime.
It decides nothing."""


class ContractError(Exception):
    """Something that breaks the task contract (outputs, archive, warehouse URL); the
    message names what and where."""
