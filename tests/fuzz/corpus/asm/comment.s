# only a comment

label:
