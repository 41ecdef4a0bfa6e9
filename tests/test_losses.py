import torch
import torch.nn.functional as F

from seqkd.losses import kd_objective, nll_loss, word_kd_loss


def logits_and_target(seed=0, n=7, v=11):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, v, generator=g) * 2, torch.randint(0, v, (n,), generator=g)


def test_fused_cross_entropy_equals_pytorchs_in_value_and_gradient():
    logits, target = logits_and_target()
    a = logits.clone().requires_grad_()
    b = logits.clone().requires_grad_()
    loss_a, loss_b = nll_loss(a * 1.0, target), F.cross_entropy(b * 1.0, target, reduction="sum")
    assert torch.allclose(loss_a, loss_b, atol=1e-5)
    (loss_a * 0.3).backward()
    (loss_b * 0.3).backward()
    assert torch.allclose(a.grad, b.grad, atol=1e-6)


def test_word_kd_with_alpha_zero_is_nll():
    logits, target = logits_and_target(1)
    teacher = torch.randn_like(logits)
    loss, nll = kd_objective(logits, target, teacher, alpha=0.0)
    assert torch.equal(loss, nll)
    assert torch.allclose(loss, F.cross_entropy(logits, target, reduction="sum"))


def test_word_kd_gradient_at_temperature_one_is_p_minus_q():
    logits, _ = logits_and_target(2)
    teacher = torch.randn_like(logits)
    student = logits.clone().requires_grad_()
    word_kd_loss(student, teacher).backward()
    p, q = torch.softmax(logits, -1), torch.softmax(teacher, -1)
    assert torch.allclose(student.grad, p - q, atol=1e-6)


def test_word_kd_is_the_cross_entropy_to_the_teacher_distribution():
    logits, target = logits_and_target(3)
    teacher = torch.randn_like(logits)
    q = torch.softmax(teacher, -1)
    expected = -(q * torch.log_softmax(logits, -1)).sum()
    assert torch.allclose(word_kd_loss(logits, teacher), expected, atol=1e-5)
    # alpha = 0.5 mixes the two halves
    loss, nll = kd_objective(logits, target, teacher, alpha=0.5)
    assert torch.allclose(loss, 0.5 * nll + 0.5 * expected, atol=1e-5)


def test_temperature_softens_both_distributions_and_scales_by_t_squared():
    logits, _ = logits_and_target(4)
    teacher = torch.randn_like(logits)
    t = 3.0
    expected = -(torch.softmax(teacher / t, -1) * torch.log_softmax(logits / t, -1)).sum() * t * t
    assert torch.allclose(word_kd_loss(logits, teacher, temperature=t), expected, atol=1e-5)


def test_topk_keeps_the_teachers_best_words_renormalized():
    logits, _ = logits_and_target(5)
    teacher = torch.randn_like(logits)
    values, index = teacher.topk(3, -1)
    q = torch.softmax(values, -1)
    expected = -(q * torch.log_softmax(logits, -1).gather(1, index)).sum()
    assert torch.allclose(word_kd_loss(logits, teacher, topk=3), expected, atol=1e-5)
    # with k = V it is the full loss
    assert torch.allclose(word_kd_loss(logits, teacher, topk=logits.size(1)), word_kd_loss(logits, teacher), atol=1e-5)
