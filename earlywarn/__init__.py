"""The earlywarn application: the command line assembled above the four stages."""
