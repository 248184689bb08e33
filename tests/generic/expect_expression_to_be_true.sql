{#- Expectation: the boolean SQL `expression` holds on every row (NULL counts as false).
    Returns the rows where it does not. -#}
{% test expect_expression_to_be_true(model, expression) %}

    select *
    from {{ model }}
    where not coalesce(({{ expression }}), false)

{% endtest %}
