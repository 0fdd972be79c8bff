"""`cpexport`: the on-call command line of the Customer Profiles export pipeline.

It finds a deployed stack through CloudFormation, reads the pipeline's state with the pipeline's own
clients and models (`cpexport`), and acts on it only after the checks the pipeline itself relies on.
"""
