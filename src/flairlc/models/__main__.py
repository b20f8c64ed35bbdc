"""Print the parameter counts of the default models: ``python -m flairlc.models``."""

from flairlc.models.summary import describe_models, format_table

if __name__ == "__main__":
    print(format_table(describe_models()))
