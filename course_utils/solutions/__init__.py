"""Reference solutions to the chapters' exercises, one module per chapter (``ch01``, ``ch02``...).

Try an exercise before reading its solution here! Each module also defines ``exercises(...)``,
which builds the chapter's ``Exercise`` objects (hidden cases, hints) from the notebook's objects;
notebooks reach it through ``course_utils.exercises.chapter_exercises``.
"""
