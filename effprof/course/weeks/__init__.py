"""One module per week of the roadmap (weeks 4–13 and 15), each defining LAB: effprof.course.lab.Lab."""
