"""Problems the RL tests generate from: black dots on white, the answer is how many."""

from PIL import Image, ImageDraw

from mmreason.problem import Problem


def dots_problem(pid: str, n: int) -> Problem:
    image = Image.new("RGB", (112, 112), "white")
    for i in range(n):
        ImageDraw.Draw(image).ellipse((10 + 25 * i, 40, 28 + 25 * i, 58), fill="black")
    return Problem(pid=pid, question="How many dots?", answer=str(n), answer_type="integer", images=[image])
