"""The demo flows: log in, leave a comment (kept in the session), log out."""

from django.contrib.auth import authenticate, login, logout
from django.http import HttpResponseBadRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST


def home(request):
    user = request.user.get_username() if request.user.is_authenticated else None
    return JsonResponse({"user": user, "comments": request.session.get("comments", [])})


@csrf_exempt
@require_POST
def login_view(request):
    user = authenticate(
        request,
        username=request.POST.get("username", ""),
        password=request.POST.get("password", ""),
    )
    if user is None:
        return HttpResponseBadRequest("bad credentials")
    login(request, user)
    return JsonResponse({"user": user.get_username()})


@csrf_exempt
@require_POST
def logout_view(request):
    logout(request)
    return JsonResponse({"user": None})


@csrf_exempt
@require_POST
def comment(request):
    text = request.POST.get("text", "").strip()
    if not text:
        return HttpResponseBadRequest("empty comment")
    request.session["comments"] = [*request.session.get("comments", []), text]
    return JsonResponse({"comments": request.session["comments"]})
