def test_it_shows_the_current_organization_to_a_key(cast, api):
    response = api(cast.owner).get("/api/v1/organization/")
    assert response.status_code == 200, response.content
    assert response.json()["slug"] == "acme"
