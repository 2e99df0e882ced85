"""Deploying the stack: the template (``template``), the code artifacts (``bundle``) and the
CloudFormation change-set flow (``stack``). Used by ``autotraining deploy`` and, against moto,
by the embedded run's ``autotraining_tools.local.provision``.
"""
