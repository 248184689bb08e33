{#- Expectation: no non-NULL value of `column_name` occurs twice. Returns every row of a
    repeated value, whole (dbt's unique returns the value and its count only).
    dbt-expectations' test of the same name. -#}
{% test expect_column_values_to_be_unique(model, column_name) %}

    select *
    from {{ model }}
    where {{ column_name }} in (
        select {{ column_name }}
        from {{ model }}
        where {{ column_name }} is not null
        group by {{ column_name }}
        having count(*) > 1
    )

{% endtest %}
